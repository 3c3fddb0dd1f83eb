// Preloaded (node --require) on the test machine: the testbed's host names, from POSTYARD_NODE_HOSTS ({"name": "address"}),
// resolve to their addresses, as Python's resolver is told in tests/testbed/appliance_support.py.
const dns = require("dns");
const hosts = JSON.parse(process.env.POSTYARD_NODE_HOSTS || "{}");
const original = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof options === "function") { callback = options; options = {}; }
  const address = hosts[hostname];
  if (address === undefined) return original.call(dns, hostname, options, callback);
  const family = address.includes(":") ? 6 : 4;
  if (options && options.all) return process.nextTick(callback, null, [{ address, family }]);
  return process.nextTick(callback, null, address, family);
};
