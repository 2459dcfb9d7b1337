// Copyright The fullnat Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// httpSummary is what `lvs-peer http` prints: both directions of one URL, verified.
type httpSummary struct {
	Put     int64  `json:"put"`      // bytes sent with PUT
	Got     int64  `json:"got"`      // bytes read back with GET
	SHA256  string `json:"sha256"`   // of what was sent
	Matches bool   `json:"matches"`  // what came back is what was sent
	Status  []int  `json:"statuses"` // of the PUT and the GET
}

// httpCmd is `lvs-peer http --url URL --size N [--seed S]`: PUT N bytes of the deterministic
// stream SEED to URL (a WebDAV server such as nginx's dav module), GET them back over a second
// connection, and compare. It exits non-zero unless both succeed and the bytes match.
func httpCmd(args []string) error {
	fs := flag.NewFlagSet("http", flag.ExitOnError)
	url := fs.String("url", "", "URL to PUT to and GET back")
	size := fs.Int64("size", 1<<20, "bytes to send")
	seed := fs.Uint64("seed", 1, "seed of the stream sent")
	timeout := fs.Duration("timeout", time.Minute, "for each request")
	_ = fs.Parse(args)
	if *url == "" {
		return fmt.Errorf("http needs --url")
	}
	// one connection per request, so each crosses the director anew
	c := &http.Client{Timeout: *timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(stream(pw, *size, *seed)) }()
	req, err := http.NewRequest(http.MethodPut, *url, pr)
	if err != nil {
		return err
	}
	req.ContentLength = *size
	s := httpSummary{Put: *size, SHA256: streamSum(*size, *seed)}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", *url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.Status = append(s.Status, resp.StatusCode)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", *url, resp.Status)
	}
	resp, err = c.Get(*url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", *url, err)
	}
	defer resp.Body.Close()
	s.Status = append(s.Status, resp.StatusCode)
	h := sha256.New()
	s.Got, err = io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: after %d bytes: %w", *url, s.Got, err)
	}
	s.Matches = resp.StatusCode == http.StatusOK && hex.EncodeToString(h.Sum(nil)) == s.SHA256 && s.Got == s.Put
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		return err
	}
	if !s.Matches {
		return fmt.Errorf("GET %s: %s, %d bytes that are not the %d sent", *url, resp.Status, s.Got, s.Put)
	}
	return nil
}
