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

// ErrNotSupported is returned (wrapped) when a request needs an extension
// feature that the running IPVS module does not report in GET_INFO. The
// request is refused before anything is sent to the kernel.
var ErrNotSupported = errors.New("not supported by the running IPVS module")

// ErrDumpInterrupted is returned (wrapped) when the kernel flagged a dump
// reply with NLM_F_DUMP_INTR: the table changed while it was being
// listed, so the listing may be inconsistent. The call fails with it;
// repeat the call for a consistent listing.
var ErrDumpInterrupted = errors.New("dump interrupted by a concurrent change, listing may be inconsistent")

// Error is an error from an IPVS operation. It names the operation and the
// object, and wraps the cause (usually a syscall.Errno from the kernel).
//
// errors.Is(err, os.ErrNotExist) holds for ESRCH and ENOENT,
// errors.Is(err, os.ErrExist) for EEXIST and errors.Is(err,
// os.ErrPermission) for EPERM and EACCES, and errors.Is(err, ErrSynProxyNotAllowed) for our
// module's EPROTONOSUPPORT. The Errno is also reachable with
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
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is maps kernel errnos onto the os sentinels (see Error).
func (e *Error) Is(target error) bool {
	var errno syscall.Errno
	if !errors.As(e.Err, &errno) {
		return false
	}
	switch target {
	case os.ErrNotExist:
		return errno == syscall.ESRCH || errno == syscall.ENOENT
	case os.ErrExist:
		return errno == syscall.EEXIST
	case os.ErrPermission:
		return errno == syscall.EPERM || errno == syscall.EACCES
	case ErrSynProxyNotAllowed:
		return errno == syscall.EPROTONOSUPPORT
	}
	return false
}

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
	}
	return "the extension"
}
