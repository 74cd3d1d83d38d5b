"""The HTTP API, in Mandrill's wire format, so Mandrill's own clients work with only the base URL changed.

- `endpoint`: the one view (routing, body parsing, key authentication, rate limits, error mapping);
- `wire`: Mandrill's error shape, parameter parsing and time format;
- `objects`: Mandrill's objects (a subaccount, a message's info) built from ours;
- `registry`: which `group/call` each handler answers, and which calls Mandrill has at all;
- one module per call group (`users`, `subaccounts`, `messages`), handlers only: each parses its
  parameters, calls one service or selector, and shapes the answer.

docs/api.md lists the calls.
"""
