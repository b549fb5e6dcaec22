// Sending a transaction and waiting for it, shared by the scripts that expect every call to succeed.

// The failing dispatch of `events`: the extrinsic's own error, or that of a call run by sudo.
function dispatchErrorOf(api, events, dispatchError) {
  if (dispatchError) return dispatchError;
  const sudid = events.find(({ event }) => api.events.sudo?.Sudid.is(event));
  return sudid && sudid.event.data[0].isErr ? sudid.event.data[0].asErr : undefined;
}

// Sends `tx` (signed by `who`, or unsigned when `who` is undefined), waits until it is in a block
// and resolves with its events; calls `fail` with the error's name if it was refused or failed.
export function submitOrFail(api, tx, who, label, { log, fail }) {
  return new Promise((resolve) => {
    const handler = ({ status, events, dispatchError }) => {
      if (!status.isInBlock) return;
      const error = dispatchErrorOf(api, events, dispatchError);
      if (error) {
        const meta = error.isModule ? api.registry.findMetaError(error.asModule) : undefined;
        fail(`${label}: ${meta ? `${meta.section}.${meta.name}` : error.toString()}`);
      }
      log(`${label}: included`);
      resolve(events);
    };
    const sent = who ? tx.signAndSend(who, { nonce: -1 }, handler) : tx.send(handler);
    sent.catch((e) => fail(`${label}: ${e.message ?? e}`));
  });
}
