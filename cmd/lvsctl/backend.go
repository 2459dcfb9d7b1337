// Copyright 2026 The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"iter"

	"github.com/fullnat/fullnat/ipvs"
)

// backend is everything lvsctl asks of IPVS. This file is the only one that
// calls the ipvs library, so a change of the library's call signatures
// (contexts, options) is absorbed here; the tests replace it with a fake.
type backend interface {
	Info(ctx context.Context) (ipvs.Info, error)
	// Table lists every service with its destinations.
	Table(ctx context.Context) ([]ipvs.ServiceDestinations, error)
	Service(ctx context.Context, key ipvs.Service) (ipvs.Service, error)
	CreateService(ctx context.Context, s ipvs.Service) error
	UpdateService(ctx context.Context, s ipvs.Service) error
	DeleteService(ctx context.Context, s ipvs.Service) error
	Destinations(ctx context.Context, svc ipvs.Service) ([]ipvs.Destination, error)
	CreateDestination(ctx context.Context, svc ipvs.Service, d ipvs.Destination) error
	UpdateDestination(ctx context.Context, svc ipvs.Service, d ipvs.Destination) error
	DeleteDestination(ctx context.Context, svc ipvs.Service, d ipvs.Destination) error
	LocalAddresses(ctx context.Context, svc ipvs.Service) ([]ipvs.LocalAddress, error)
	CreateLocalAddress(ctx context.Context, svc ipvs.Service, la ipvs.LocalAddress) error
	DeleteLocalAddress(ctx context.Context, svc ipvs.Service, la ipvs.LocalAddress) error
	// Connections streams the connection table, or the connections of svc
	// when it is not nil (ipvs.Client.Connections, ServiceConnections).
	Connections(ctx context.Context, svc *ipvs.Service) iter.Seq2[ipvs.Connection, error]
	Close() error
}

// kernel is the backend over a real ipvs.Client.
type kernel struct{ c *ipvs.Client }

// openKernel opens a client in the calling process's network namespace, or
// in the one at netns when it is not empty.
func openKernel(netns string) (backend, error) {
	var c *ipvs.Client
	var err error
	if netns != "" {
		c, err = ipvs.NewInNamespace(netns)
	} else {
		c, err = ipvs.New()
	}
	if err != nil {
		return nil, err
	}
	return kernel{c}, nil
}

func (k kernel) Info(ctx context.Context) (ipvs.Info, error) { return k.c.Info(ctx) }
func (k kernel) Table(ctx context.Context) ([]ipvs.ServiceDestinations, error) {
	return k.c.ServicesWithDestinations(ctx)
}
func (k kernel) Service(ctx context.Context, key ipvs.Service) (ipvs.Service, error) {
	return k.c.Service(ctx, key)
}
func (k kernel) CreateService(ctx context.Context, s ipvs.Service) error {
	return k.c.CreateService(ctx, s)
}
func (k kernel) UpdateService(ctx context.Context, s ipvs.Service) error {
	return k.c.UpdateService(ctx, s)
}
func (k kernel) DeleteService(ctx context.Context, s ipvs.Service) error {
	return k.c.DeleteService(ctx, s)
}
func (k kernel) Destinations(ctx context.Context, svc ipvs.Service) ([]ipvs.Destination, error) {
	return k.c.Destinations(ctx, svc)
}
func (k kernel) CreateDestination(ctx context.Context, svc ipvs.Service, d ipvs.Destination) error {
	return k.c.CreateDestination(ctx, svc, d)
}
func (k kernel) UpdateDestination(ctx context.Context, svc ipvs.Service, d ipvs.Destination) error {
	return k.c.UpdateDestination(ctx, svc, d)
}
func (k kernel) DeleteDestination(ctx context.Context, svc ipvs.Service, d ipvs.Destination) error {
	return k.c.DeleteDestination(ctx, svc, d)
}
func (k kernel) LocalAddresses(ctx context.Context, svc ipvs.Service) ([]ipvs.LocalAddress, error) {
	return k.c.LocalAddresses(ctx, svc)
}
func (k kernel) CreateLocalAddress(ctx context.Context, svc ipvs.Service, la ipvs.LocalAddress) error {
	return k.c.CreateLocalAddress(ctx, svc, la)
}
func (k kernel) DeleteLocalAddress(ctx context.Context, svc ipvs.Service, la ipvs.LocalAddress) error {
	return k.c.DeleteLocalAddress(ctx, svc, la)
}
func (k kernel) Connections(ctx context.Context, svc *ipvs.Service) iter.Seq2[ipvs.Connection, error] {
	if svc == nil {
		return k.c.Connections(ctx)
	}
	return k.c.ServiceConnections(ctx, *svc)
}
func (k kernel) Close() error { return k.c.Close() }
