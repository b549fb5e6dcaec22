// Sending a transaction and waiting for it, shared by the scripts that expect every call to succeed.

// The failing dispatch of `events`: the extrinsic's own error, or that of a call run by sudo.
function dispatchErrorOf(api, events, dispatchError) {
  if (dispatchError) return dispatchError;
  const sudid = events.find(({ event }) => api.events.sudo?.Sudid.is(event));
  return sudid && sudid.event.data[0].isErr ? sudid.event.data[0].asErr : undefined;
}

// Sends `tx` (signed by `who`, or unsigned when `who` is undefined), waits until it is in a block
// and resolves with its events; calls `fail` with the error's name if it was refused or failed,
// with the pool's verdict if the pool let it go, and with its last status if it is not in a block
// after `seconds`.
export function submitOrFail(api, tx, who, label, { log, fail }, seconds = 120) {
  return new Promise((resolve) => {
    let last = 'not yet answered by the node';
    const timer = setTimeout(() => fail(`${label}: not in a block after ${seconds} s (last status: ${last})`), seconds * 1000);
    const handler = ({ status, events, dispatchError }) => {
      last = status.type;
      if (status.isInvalid || status.isDropped || status.isUsurped) {
        clearTimeout(timer);
        fail(`${label}: ${status.type} in the transaction pool`);
      }
      if (!status.isInBlock) return;
      clearTimeout(timer);
      const error = dispatchErrorOf(api, events, dispatchError);
      if (error) {
        const meta = error.isModule ? api.registry.findMetaError(error.asModule) : undefined;
        fail(`${label}: ${meta ? `${meta.section}.${meta.name}` : error.toString()}`);
      }
      log(`${label}: included`);
      resolve(events);
    };
    const sent = who ? tx.signAndSend(who, { nonce: -1 }, handler) : tx.send(handler);
    sent.catch((e) => {
      clearTimeout(timer);
      fail(`${label}: ${e.message ?? e}`);
    });
  });
}
