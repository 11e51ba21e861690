"use strict";
/*
 * An XEP-0114 component on xmpp.js (@xmpp/component), driven line by line.
 *
 *     NODE_PATH=PREFIX/node_modules XCOMP_SECRET=... node xmppjs_component.js HOST PORT JID DOMAIN
 *
 * The secret comes from the environment, not the argument list. Events on
 * standard output, one a line:
 *     online                      the handshake succeeded ("online" event)
 *     got ping from JID           a ping arrived (iqCallee answers it)
 *     pong from JID               the result of our ping arrived (iqCaller)
 *     ping error: ...             our ping failed
 *     message from JID: BODY      a message arrived
 *     error: NAME: MESSAGE [condition=C text=T]
 *                                 what xmpp.js emitted as "error"
 *     error again: NAME           the same error object emitted once more
 *     disconnected                the connection is gone; the program exits
 * Commands on standard input, one a line:
 *     ping JID                    XEP-0199 ping (xmpp.js adds our JID as 'from')
 *     message JID BODY            a message
 *     quit                        close the stream and exit (as does EOF)
 * Exit status: 0 after quit or EOF while online, 1 when the session failed.
 * XCOMP_DEBUG=1 logs the raw XML both ways on standard error.
 */

const readline = require("readline");
const { component, xml } = require("@xmpp/component");

function say(line) {
  process.stdout.write(line + "\n");
}

const [host, port, jid] = process.argv.slice(2);
if (process.argv.length !== 6 || !process.env.XCOMP_SECRET) {
  process.stderr.write("usage: XCOMP_SECRET=... node xmppjs_component.js HOST PORT JID DOMAIN\n");
  process.exit(2);
}

const xmpp = component({
  service: `xmpp://${host}:${port}`,
  domain: jid,
  password: process.env.XCOMP_SECRET,
});

let wasOnline = false;
let failed = false;
let quitting = false;
let finished = false;

if (process.env.XCOMP_DEBUG) {
  xmpp.on("input", (s) => process.stderr.write(`IN  ${s}\n`));
  xmpp.on("output", (s) => process.stderr.write(`OUT ${s}\n`));
}

const seen = new Set();
xmpp.on("error", (err) => {
  failed = true;
  // xmpp.js 0.13 emits a stream error twice: from the connection, then again
  // from @xmpp/component's handshake (its sendReceive rejects with the same object).
  if (seen.has(err)) {
    say(`error again: ${err.name}`);
    return;
  }
  seen.add(err);
  let line = `error: ${err.name}: ${err.message}`;
  if (err.condition !== undefined) line += ` [condition=${err.condition} text=${err.text}]`;
  say(line);
  // No reconnecting: the test wants to see the failure, once.
  xmpp.reconnect.stop();
});

xmpp.on("online", () => {
  wasOnline = true;
  say("online");
});

xmpp.on("offline", () => finish());
xmpp.on("disconnect", () => {
  if (!quitting) finish();
});

xmpp.iqCallee.get("urn:xmpp:ping", "ping", (ctx) => {
  say(`got ping from ${ctx.from}`);
  return {};
});

xmpp.on("stanza", (stanza) => {
  if (stanza.is("message")) {
    say(`message from ${stanza.attrs.from}: ${stanza.getChildText("body")}`);
  }
});

async function ping(to) {
  try {
    const reply = await xmpp.iqCaller.request(
      xml("iq", { type: "get", to }, xml("ping", "urn:xmpp:ping")),
      5000,
    );
    say(`pong from ${reply.attrs.from}`);
  } catch (err) {
    say(`ping error: ${err.name}: ${err.message}`);
  }
}

function finish() {
  if (finished) return;
  finished = true;
  say("disconnected");
  process.exit(wasOnline && quitting && !failed ? 0 : 1);
}

async function quit() {
  if (quitting) return;
  quitting = true;
  xmpp.reconnect.stop();
  try {
    if (xmpp.status !== "offline") await xmpp.stop();
  } catch (err) {
    say(`error: ${err.name}: ${err.message}`);
  }
  finish();
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const m = line.trim().match(/^(\S+)(?:\s+(\S+))?(?:\s+(.*))?$/);
  if (!m) return;
  const [, verb, arg, rest] = m;
  if (verb === "ping" && arg && rest === undefined) ping(arg);
  else if (verb === "message" && arg && rest !== undefined)
    xmpp.send(xml("message", { to: arg, type: "chat" }, xml("body", {}, rest)));
  else if (verb === "quit") quit();
  else say(`error: unknown command ${line}`);
});
rl.on("close", () => quit());

// A failure is reported by the "error" listener; the "disconnect" that follows ends the program.
xmpp.start().catch(() => {});
