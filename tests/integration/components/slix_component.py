#!/usr/bin/python3
"""An XEP-0114 component on slixmpp's ComponentXMPP, driven line by line.

    /usr/bin/python3 slix_component.py HOST PORT JID DOMAIN < commands

The secret comes from the environment (XCOMP_SECRET), not the argument list.
Events on standard output, one a line:
    online                      the handshake succeeded
    got ping from JID           a ping arrived (slixmpp's xep_0199 answers it)
    pong from JID               the result of our ping arrived
    ping error: CONDITION       our ping got an error
    message from JID: BODY      a message arrived
    error: ...                  what slixmpp reported (stream error, failure)
    keepalive sent              the first whitespace keepalive went out
    disconnected: REASON        the connection is gone; the program exits
Commands on standard input, one a line:
    ping JID                    XEP-0199 ping from our JID
    message JID BODY            a message from our JID
    quit                        close the stream and exit (as does EOF)
Exit status: 0 after quit or EOF while online, 1 when the session failed.
"""

import asyncio
import logging
import os
import sys

from slixmpp.componentxmpp import ComponentXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath


def say(line):
    print(line, flush=True)


class Component(ComponentXMPP):
    def __init__(self, jid, secret, host, port):
        super().__init__(jid, secret, host, port)
        self.register_plugin("xep_0199")
        # Report incoming pings, then let the plugin answer them.
        ping = self.plugin["xep_0199"]
        self.remove_handler("Ping")
        self.register_handler(Callback("Ping", StanzaPath("iq@type=get/ping"),
                                       lambda iq: (say("got ping from %s" % iq["from"]),
                                                   ping._handle_ping(iq))))
        self.add_event_handler("session_start", lambda _: say("online"))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("connection_failed",
                               lambda e: say("error: connection failed: %s" % e))
        self.add_event_handler("disconnected", self.on_disconnected)
        self.done = asyncio.get_event_loop().create_future()
        self.was_online = False
        self.add_event_handler("session_start", self.mark_online)
        self.quitting = False
        # XCOMP_KEEPALIVE=SECONDS: slixmpp's whitespace keepalive (one space
        # between stanzas, every 300 s by default) much sooner; the first is reported.
        if os.environ.get("XCOMP_KEEPALIVE"):
            self.whitespace_keepalive_interval = float(os.environ["XCOMP_KEEPALIVE"])
        self.keepalive_seen = False

    def send_raw(self, data):
        super().send_raw(data)
        if data == " " and not self.keepalive_seen:
            self.keepalive_seen = True
            say("keepalive sent")

    def mark_online(self, _):
        self.was_online = True

    def on_message(self, msg):
        say("message from %s: %s" % (msg["from"], msg["body"]))

    def on_stream_error(self, err):
        say("error: stream error %s: %s" % (err["condition"], err["text"]))

    def on_disconnected(self, reason):
        say("disconnected: %s" % (reason,))
        if not self.done.done():
            self.done.set_result(0 if self.was_online and self.quitting else 1)

    async def do_ping(self, jid):
        try:
            reply = await self.plugin["xep_0199"].send_ping(jid, ifrom=self.boundjid, timeout=5)
            say("pong from %s" % reply["from"])
        except IqError as e:
            say("ping error: %s" % e.iq["error"]["condition"])
        except IqTimeout:
            say("ping error: timeout")

    def command(self, line):
        words = line.split(None, 2)
        if not words:
            return
        if words[0] == "ping" and len(words) == 2:
            asyncio.ensure_future(self.do_ping(words[1]))
        elif words[0] == "message" and len(words) == 3:
            self.send_message(mto=words[1], mbody=words[2], mtype="chat", mfrom=self.boundjid)
        elif words[0] == "quit":
            self.quit()
        else:
            say("error: unknown command %r" % line)

    def quit(self):
        if self.quitting:
            return
        self.quitting = True
        if self.is_connected():
            self.disconnect(wait=2.0)
        elif not self.done.done():
            self.done.set_result(0)


def main():
    if len(sys.argv) != 5:
        sys.stderr.write("usage: slix_component.py HOST PORT JID DOMAIN\n")
        return 2
    host, port, jid, _domain = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    logging.basicConfig(level=logging.DEBUG if os.environ.get("XCOMP_DEBUG") else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    xmpp = Component(jid, os.environ["XCOMP_SECRET"], host, port)
    # Given an IP address, slixmpp 1.8 leaves default_domain empty and asks
    # the resolver (aiodns) for A/AAAA records of "" before it falls back to
    # the address; an IP literal as default_domain skips the lookup.
    xmpp.default_domain = host
    loop = asyncio.get_event_loop()
    buf = b""

    def readable():
        nonlocal buf
        data = os.read(0, 4096)
        if not data:
            loop.remove_reader(0)
            xmpp.quit()
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            xmpp.command(line.decode("utf-8").strip())

    loop.add_reader(0, readable)
    xmpp.connect()
    rc = loop.run_until_complete(xmpp.done)
    loop.remove_reader(0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
