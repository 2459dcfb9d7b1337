// Package keepalived proves that Debian's keepalived 2.2.7 with our patch series
// (patches/keepalived/2.2.7, built by `make keepalived`) drives FULLNAT and SYNPROXY on our
// module: the configuration corpus in testdata/keepalived builds the pinned tables or is refused
// with the pinned reason; health checks remove and re-add FULLNAT real servers under traffic
// without turning them into NAT or clearing SYNPROXY; a reload adds and removes local addresses
// one by one under long transfers; vip_bind_dev binds the VIP exactly while the virtual server
// has quorum; on Debian's own ip_vs the FULLNAT and SYNPROXY services are
// left out with a log line naming the module, and the rest still works. Run it with
// rig/vmtest.sh ./test/keepalived.
package keepalived
