// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package ipvs

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/mdlayher/netlink"
)

// ErrSynProxyNotAllowed matches (with errors.Is) the kernel's refusal of SYNPROXY where it
// cannot work: on a service that is not TCP, or together with real servers that are not NAT or
// FULLNAT (direct routing, tunnels), whichever of the two is configured first.
var ErrSynProxyNotAllowed = errors.New("SYNPROXY needs a TCP service with NAT or FULLNAT real servers")

// ErrProxyProtocolNotAllowed matches (with errors.Is) the kernel's refusal of the PROXY
// protocol (our module's EOPNOTSUPP on creating or updating a service or a destination) where it
// cannot work: on a service that is not TCP (UDP, SCTP; fwmark services count as TCP), on a
// service that has a real server that is not FULLNAT, or a NAT, DR or tunnel real server on a
// service that has it.
var ErrProxyProtocolNotAllowed = errors.New("the PROXY protocol needs a TCP service whose real servers are all FULLNAT")

// ErrNotSupported is returned (wrapped) when a request needs an extension
// feature that the running IPVS module does not report in GET_INFO. The
// request is refused before anything is sent to the kernel.
var ErrNotSupported = errors.New("not supported by the running IPVS module")

// ErrDumpInterrupted is returned (wrapped) when the kernel flagged a dump
// reply with NLM_F_DUMP_INTR: the table changed while it was being
// listed, so the listing may be inconsistent. The call fails with it;
// repeat the call for a consistent listing.
var ErrDumpInterrupted = errors.New("dump interrupted by a concurrent change, listing may be inconsistent")

// Sentinels for the kernel's answers, matched with errors.Is on the errors
// of every Client method (and of each failed operation of a batch). The
// mapping from errnos, which IPVS uses ambiguously, depends on the
// operation:
//
//	errno            operation                         matches
//	ESRCH            any                               ErrNotFound, os.ErrNotExist
//	ENOENT           create/update service, New        ErrModuleNotFound
//	ENOENT           any other                         ErrNotFound, os.ErrNotExist
//	EEXIST           any                               ErrExist, os.ErrExist
//	EPERM, EACCES    any                               ErrPermission, os.ErrPermission
//	EPROTONOSUPPORT  any (our module's SYNPROXY check) ErrSynProxyNotAllowed
//	EOPNOTSUPP       create/update service or          ErrProxyProtocolNotAllowed
//	                 destination (our module's PROXY
//	                 protocol check)
//
// IPVS answers ESRCH for a missing service (every command that names one,
// and a stopped sync daemon that is not running) and ENOENT for a missing
// destination or local address; on creating or updating a service, ENOENT
// means that the scheduler or persistence engine module named by the
// service could not be loaded (and opening a client, that the IPVS
// generic netlink family is missing: ip_vs is not loaded). So "update, else create" logic tests
// ErrNotFound, and a missing scheduler is never mistaken for it. The errno
// itself stays reachable with errors.Is(err, syscall.ENOENT) or errors.As.
var (
	// ErrNotFound: the service, destination, local address or sync daemon
	// the request names does not exist.
	ErrNotFound = errors.New("no such service, destination, local address or daemon")
	// ErrModuleNotFound: a kernel module the request needs is not
	// available: the scheduler or persistence engine a service names, or
	// (opening a client) ip_vs itself.
	ErrModuleNotFound = errors.New("kernel module not available")
	// ErrExist: the object to create exists already.
	ErrExist = errors.New("already exists")
	// ErrPermission: the caller lacks CAP_NET_ADMIN (over the network
	// namespace's owning user namespace; IPVS needs it even for reading).
	ErrPermission = errors.New("permission denied (IPVS needs CAP_NET_ADMIN)")
)

// Error is an error from an IPVS operation. It names the operation and the
// object, and wraps the cause (usually a syscall.Errno from the kernel).
// errors.Is maps the errno onto the package's sentinels and the os ones:
// see ErrNotFound for the table. The Errno is also reachable with
// errors.As or errors.Is(err, syscall.ESRCH).
type Error struct {
	// Op is the operation, e.g. "create service".
	Op string
	// Object describes the object, e.g. "TCP 192.0.2.1:80"; may be empty.
	Object string
	// Message is the kernel's extended-ack message, if any.
	Message string
	// Err is the cause.
	Err error

	// moduleENOENT: ENOENT means a missing module (creating or updating
	// a service: scheduler or PE; opening a client: ip_vs).
	moduleENOENT bool
}

// Error implements error.
func (e *Error) Error() string {
	s := "ipvs: " + e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	s += ": " + e.Err.Error()
	if e.Message != "" {
		s += " (" + e.Message + ")"
	} else if e.Is(ErrModuleNotFound) && e.Op != "resolve family" {
		s += " (scheduler or persistence engine module not available)"
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is maps kernel errnos onto the sentinels (see ErrNotFound).
func (e *Error) Is(target error) bool {
	var errno syscall.Errno
	if !errors.As(e.Err, &errno) {
		return false
	}
	switch target {
	case ErrNotFound, os.ErrNotExist:
		return errno == syscall.ESRCH || errno == syscall.ENOENT && !e.moduleENOENT
	case ErrModuleNotFound:
		return errno == syscall.ENOENT && e.moduleENOENT
	case ErrExist, os.ErrExist:
		return errno == syscall.EEXIST
	case ErrPermission, os.ErrPermission:
		return errno == syscall.EPERM || errno == syscall.EACCES
	case ErrSynProxyNotAllowed:
		return errno == syscall.EPROTONOSUPPORT
	case ErrProxyProtocolNotAllowed:
		return errno == syscall.EOPNOTSUPP && e.configures()
	}
	return false
}

// configures reports whether e is the failure of creating or updating a
// service or a destination: the operations on which our module's EOPNOTSUPP
// is the PROXY protocol check (elsewhere it means an unknown command).
func (e *Error) configures() bool {
	for _, k := range []OpKind{OpCreateService, OpUpdateService, OpCreateDestination, OpUpdateDestination} {
		if e.Op == k.verb() {
			return true
		}
	}
	return false
}

// opErr wraps the error of op (see wrapErr), telling the errno mapping
// which operation it was.
func opErr(op *Op, err error) error {
	err = wrapErr(op.Kind.verb(), op.object(), err)
	var ie *Error
	if (op.Kind == OpCreateService || op.Kind == OpUpdateService) && errors.As(err, &ie) {
		ie.markModule()
	}
	return err
}

// markModule records that ENOENT means a missing module, and hides the
// errno from os.ErrNotExist (syscall.Errno's own Is would match it).
func (e *Error) markModule() {
	e.moduleENOENT = true
	if errors.Is(e.Err, syscall.ENOENT) {
		e.Err = missingModule{e.Err}
	}
}

// missingModule is an ENOENT that means "no such module": errors.Is
// matches syscall.ENOENT and errors.As finds the Errno, but it does not
// match os.ErrNotExist.
type missingModule struct{ err error }

func (m missingModule) Error() string        { return m.err.Error() }
func (m missingModule) Is(target error) bool { return target == syscall.ENOENT }
func (m missingModule) As(target any) bool   { return errors.As(m.err, target) }

// wrapErr turns an error from the netlink layer into an *Error.
func wrapErr(op, object string, err error) error {
	if err == nil {
		return nil
	}
	var ie *Error
	if errors.As(err, &ie) {
		return err
	}
	e := &Error{Op: op, Object: object, Err: err}
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		e.Message = oe.Message
		if oe.Err != nil {
			e.Err = oe.Err
		}
	}
	return e
}

// notSupported builds the error for a missing extension feature.
func notSupported(op, object string, f Features) error {
	return &Error{Op: op, Object: object, Err: fmt.Errorf("%w: %s needs feature %s; load the fullnat ip_vs module (kmod/) instead of the stock one",
		ErrNotSupported, featureWhat(f), f)}
}

func featureWhat(f Features) string {
	switch f {
	case FeatureFullNAT:
		return "FULLNAT forwarding and local addresses"
	case FeatureSynProxy:
		return "the SYNPROXY service flag"
	case FeatureEstTimeout:
		return "the per-service ESTABLISHED timeout"
	case FeatureProxyProtocol:
		return "the PROXY protocol"
	}
	return "the extension"
}
