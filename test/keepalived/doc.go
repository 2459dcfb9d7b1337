// Package keepalived proves that Debian's keepalived with our patch series
// (patches/keepalived/VERSION, built by `make keepalived`) drives FULLNAT and SYNPROXY on our
// module: the configuration corpus in testdata/keepalived builds the pinned tables or is refused
// with the pinned reason; health checks remove and re-add FULLNAT real servers under traffic
// without turning them into NAT or clearing SYNPROXY; a reload adds and removes local addresses
// one by one under long transfers; vip_bind_dev binds the VIP exactly while the virtual server
// has quorum; the README's director pair (two director namespaces, VRRP, vip_bind_dev) fails over
// to the backup and new FULLNAT connections go through it; on Debian's own ip_vs the FULLNAT and
// SYNPROXY services are left out with a log line naming the module, and the rest still works;
// proxy_protocol sets a FNAT TCP service's PROXY protocol version, a reload changes it or turns it
// off by editing the service, and a UDP service with it is left out; configurations with none of
// our words (NAT and DR, testdata/keepalived/same) leave the same IPVS state with Debian's
// keepalived and ours, on Debian's ip_vs and on ours, through health check failures, returns,
// reloads and the stop (TestSameAsDebian).
// Run it with rig/vmtest.sh ./test/keepalived.
//
// Two builds, each a Debian release's keepalived tested on that release's kernel, as a subtest
// named by its version (-run 'TestX/2.3.3'): bookworm's 2.2.7 on 6.1, trixie's 2.3.3 (built on
// the host with bookworm's libraries) on 6.12 and 7.x. They run the tests that show the series
// behaves the same in both: the corpus (TestCorpusBad: `keepalived -t` refusals; TestCorpusGood:
// `-t` and the pinned tables), FULLNAT+SYNPROXY with TCP_CHECK under traffic
// (TestHealthCheckFullNAT), the reloads (TestReloadLocalAddresses, TestEstTimeoutRemoved) and
// proxy_protocol (TestProxyProtocol), and the comparison with Debian's (TestSameAsDebian).
// TestStockModule, TestVipBindDev and TestVRRPPair run 2.2.7 on every line:
// they exercise code that is the same in both series (the feature probe; vip_bind_dev's hooks sit
// at the same places of 2.2.7's and 2.3.3's quorum code) or not ours (VRRP). The checks of
// Debian's own keepalived, which show what a test catches, run with the first build of the line.
// (Both builds on one line cost about 80 s more under TCG: CI's budget.)
package keepalived
