// A step of blyan.zndsl (`alice: js-script ./training-finished.js return is at least 1 ...`):
// waits, on the node's finalized state, for a training job whose training has finished: the miner
// trained, committed, the creator revealed the validation set and the miner revealed its result,
// so the job is `Verifying` with a candidate version in the registry. (Verification itself needs a
// committee of 3 bonded verifiers, which this network does not have.) Returns how many jobs are
// at that stage. Zombienet calls `run` with the node's name and the network's endpoints, and
// provides @polkadot/api as the global `zombie`.
async function run(nodeName, networkInfo) {
  const { wsUri } = networkInfo.nodesByName[nodeName];
  const api = await zombie.ApiPromise.create({ provider: new zombie.WsProvider(wsUri), noInitWarn: true });
  const keyring = new zombie.Keyring({ type: "sr25519" });
  const names = Object.fromEntries(["Eve", "Ferdie"].map((n) => [keyring.addFromUri(`//${n}`).address, `//${n}`]));
  try {
    for (;;) {
      const at = await api.at(await api.rpc.chain.getFinalizedHead());
      const finished = [];
      for (const [key, maybeJob] of await at.query.jobs.jobs.entries()) {
        if (maybeJob.isNone) continue;
        const status = maybeJob.unwrap().status;
        if (!status.isVerifying) continue;
        const { worker, candidate } = status.asVerifying;
        const version = await at.query.registry.versions(candidate);
        if (version.isNone) throw new Error(`job ${key.args[0]}: candidate version ${candidate} is not in the registry`);
        finished.push(`job ${key.args[0]}: trained by ${names[worker.toString()] || worker}, candidate version ${candidate} ` +
          `(${version.unwrap().status})`);
      }
      if (finished.length > 0) {
        for (const line of finished) console.log(`\t ${line}`);
        return finished.length;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  } finally {
    await api.disconnect();
  }
}

module.exports = { run };
