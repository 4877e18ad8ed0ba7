// Loaded with `node --import` into a child process under test: resolves the host names of Azure Key
// Vaults and Managed HSMs (*.vault.azure.net, *.managedhsm.azure.net) to 127.0.0.1, like a hosts-file
// entry, so that a local test server can be reached under a real vault's host name and the Azure
// SDK's challenge-resource check runs as in production. Every other name resolves as usual; nothing
// leaves this machine.
import dns from 'node:dns';

const LOCAL_VAULT = /\.(?:vault|managedhsm)\.azure\.net$/i;
const lookup = dns.lookup;

dns.lookup = function lookupVaultLocally(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (typeof hostname === 'string' && LOCAL_VAULT.test(hostname)) {
    const all = typeof options === 'object' && options !== null && options.all;
    process.nextTick(() => (all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)));
    return {};
  }
  return lookup.call(this, hostname, options, callback);
};
