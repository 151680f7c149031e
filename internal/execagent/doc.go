// Package execagent is the exec agent that runs inside every sandbox
// container as its long-running process, and the framed protocol the
// sidecar speaks with it over the container's attached stdin and stdout.
//
// A frame is a 4-byte big-endian length, then that many bytes: a 1-byte
// type, a 4-byte big-endian stream ID and the payload. The length counts
// type, stream and payload, so it lies in [HeaderSize, HeaderSize+MaxPayload];
// (MaxStartPayload for frames to the agent); anything else is a protocol error and ends the connection. Stream 0 is the
// connection itself (hello, ping); every command runs on a stream ID the
// sidecar picks, so several sessions share one agent.
//
// The conversation: the sidecar sends Hello (version, nonce); the agent
// kills whatever it still runs, forgets its streams and answers Hello
// (version, its PID, the nonce). Then, per command: Start → the agent
// streams Stdout and Stderr frames, never more bytes than the sidecar has
// granted (Credit; InitialWindow to begin with), and ends with one Exit.
// Kill kills the command's process group. Ping is answered by Pong.
//
// It is a leaf (the standard library only): the agent is built from it as a
// small static program that runs in any image.
package execagent
