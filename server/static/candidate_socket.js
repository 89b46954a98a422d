// Mentara candidate page, the connection: one interview's WebSocket (PROTOCOL.md §1-§6) that
// survives drops, reloads and server restarts without losing or repeating anything.
//
// - The token travels only in the socket's first `auth` frame, never in a URL.
// - Every event carries `seq`; events at or below the last one shown are dropped, and a
//   reconnect resumes from it (`session.resume {last_seq}`), so a replay never duplicates text
//   and a gap is never silently skipped.
// - The events shown are kept in sessionStorage (bounded), with the frames not yet acked: a
//   reload shows them again at once, resumes from the last seq and re-sends what was pending
//   under the same ids (the server applies a repeated id once).
// - Close codes decide what happens next (§6): 1001, 1006, 1011, 1013, 4003 reconnect with
//   backoff and resume; 4001 needs a new token; 1000, 1008, 4004 stop.
"use strict";

window.MentaraSocket = (() => {
  const SUBPROTOCOL = "mentara.v1.json";
  const STATE_KEY = "mentara.candidate.interview";
  const MAX_CACHED_EVENTS = 20000;
  const SAVE_DELAY_MS = 250;
  const RECONNECTING = new Set([1001, 1006, 1011, 1012, 1013, 4003]);

  const newId = () =>
    window.crypto && window.crypto.randomUUID
      ? window.crypto.randomUUID()
      : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

  function loadState() {
    try {
      const raw = sessionStorage.getItem(STATE_KEY);
      const state = raw ? JSON.parse(raw) : null;
      return state && typeof state === "object" ? state : null;
    } catch {
      return null;
    }
  }

  /** The interview this tab is in, or null. */
  const saved = () => loadState();
  const forget = () => sessionStorage.removeItem(STATE_KEY);

  /**
   * One interview. ``start`` is a session.start frame (a new interview) or null (resume
   * ``sessionId``). ``hooks``: token() -> string, onEvent(e, live), onReset(), onSnapshot(f),
   * onControl(frame), onConn(state, detail), onClose(code, reason, final).
   */
  class InterviewConnection {
    constructor({ sessionId = null, start = null, restore = null }, hooks) {
      this.hooks = hooks;
      this.sessionId = sessionId;
      this.start = start; // the session.start frame until session.started arrives
      this.events = []; // shown events, in seq order, for a reload
      this.lastSeq = 0;
      this.pending = new Map(); // id -> frame sent but not yet acked (or errored)
      this.attempt = 0;
      this.socket = null;
      this.timer = null;
      this.saveTimer = null;
      this.stopped = false;
      this.welcomed = false;
      if (restore) this.restore(restore);
    }

    /** Show again what a reloaded tab had shown; then connect resumes after it. */
    restore(state) {
      this.sessionId = state.session_id || null;
      this.start = state.start || null;
      const events = Array.isArray(state.events) ? state.events : [];
      // Only a gap-free run from seq 1 is trusted; anything else replays from the server.
      if (events.every((e, i) => e && e.seq === i + 1)) {
        for (const e of events) this.show(e, false);
      }
      for (const frame of Array.isArray(state.pending) ? state.pending : []) {
        if (frame && typeof frame.id === "string") this.pending.set(frame.id, frame);
      }
    }

    save() {
      if (this.saveTimer !== null) return;
      this.saveTimer = window.setTimeout(() => this.saveNow(), SAVE_DELAY_MS);
    }

    saveNow() {
      if (this.saveTimer !== null) window.clearTimeout(this.saveTimer);
      this.saveTimer = null;
      if (this.stopped) return;
      const state = {
        session_id: this.sessionId,
        start: this.start,
        events: this.events.length <= MAX_CACHED_EVENTS ? this.events : [],
        pending: [...this.pending.values()],
      };
      try {
        sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
      } catch {
        // Storage full: keep the interview, drop the cache (a reload replays from the server).
        try {
          sessionStorage.setItem(STATE_KEY, JSON.stringify({ ...state, events: [] }));
        } catch {
          /* nothing more to do */
        }
      }
    }

    connect() {
      this.timer = null;
      if (this.stopped) return;
      const url = new URL("/v1/interview", window.location.href);
      url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
      this.hooks.onConn("connecting");
      const socket = new WebSocket(url, [SUBPROTOCOL]);
      this.socket = socket;
      this.welcomed = false;
      socket.addEventListener("open", () => {
        if (socket !== this.socket) return;
        this.hooks.onConn("authenticating");
        socket.send(JSON.stringify({ type: "auth", token: this.hooks.token() }));
      });
      socket.addEventListener("message", (message) => {
        if (socket !== this.socket || typeof message.data !== "string") return;
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch {
          return;
        }
        if (frame && typeof frame === "object" && typeof frame.type === "string") {
          this.onFrame(socket, frame);
        }
      });
      socket.addEventListener("close", (event) => {
        if (socket !== this.socket) return;
        this.socket = null;
        this.onClose(event);
      });
    }

    /** Send a client frame; frames with an ``id`` are kept until acked and re-sent after a
     *  reconnect (same id: applied once). Returns the id. */
    send(frame) {
      if (frame.id === undefined) frame.id = newId();
      if (frame.type === "code.update") {
        // Only the latest buffer matters: an older unacked one is superseded.
        for (const [id, old] of this.pending) if (old.type === "code.update") this.pending.delete(id);
      }
      this.pending.set(frame.id, frame);
      this.save();
      this.write(frame);
      return frame.id;
    }

    write(frame) {
      if (this.socket && this.welcomed && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(frame));
      }
    }

    attach(socket) {
      if (this.sessionId) {
        const lastSeq = this.lastSeq;
        this.hooks.onConn("resuming", `after event ${lastSeq}`);
        socket.send(
          JSON.stringify({ type: "session.resume", session_id: this.sessionId, last_seq: lastSeq }),
        );
        return true;
      }
      if (this.start) {
        this.hooks.onConn("starting");
        socket.send(JSON.stringify(this.start));
        return true;
      }
      return false;
    }

    flushPending() {
      for (const frame of this.pending.values()) this.write(frame);
    }

    onFrame(socket, frame) {
      switch (frame.type) {
        case "welcome":
          this.welcomed = true;
          this.attach(socket);
          return;
        case "resumed":
          this.attempt = 0;
          this.hooks.onConn("live", `resumed after event ${this.lastSeq}, ${frame.replayed} replayed`);
          this.flushPending();
          return;
        case "snapshot":
          this.attempt = 0;
          this.events = [];
          this.hooks.onReset();
          this.hooks.onSnapshot(frame);
          this.lastSeq = frame.seq;
          this.hooks.onConn("live", `caught up from a snapshot at event ${frame.seq}`);
          this.flushPending();
          this.save();
          return;
        case "ack":
        case "error":
          if (typeof frame.ref === "string") {
            const isStart = this.start !== null && this.start.id === frame.ref;
            const sent = this.pending.get(frame.ref) || (isStart ? this.start : null);
            this.pending.delete(frame.ref);
            this.save();
            this.hooks.onControl(frame, sent);
          } else {
            this.hooks.onControl(frame, null);
          }
          return;
        default:
          break;
      }
      if (typeof frame.seq !== "number") {
        this.hooks.onControl(frame, null); // pong and anything new
        return;
      }
      if (frame.seq <= this.lastSeq) return; // already shown
      this.show(frame, true);
    }

    show(e, live) {
      if (e.type === "session.started" && e.session_id) {
        this.sessionId = e.session_id;
        this.start = null;
      }
      this.lastSeq = e.seq;
      this.events.push(e);
      this.hooks.onEvent(e, live);
      if (live && e.type === "session.started") {
        this.attempt = 0;
        this.hooks.onConn("live");
        this.flushPending();
      }
      if (live) this.save();
    }

    onClose(event) {
      if (this.stopped) return;
      const final = !RECONNECTING.has(event.code) && event.code !== 1009;
      this.hooks.onClose(event.code, event.reason || "", final);
      if (final) {
        this.hooks.onConn("closed", `${event.code}`);
        return;
      }
      const delay = Math.min(15000, 300 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      this.hooks.onConn("reconnecting", `in ${(delay / 1000).toFixed(1)} s (close ${event.code})`);
      this.timer = window.setTimeout(() => this.connect(), delay);
    }

    /** Reconnect at once (after a new token, or when the candidate asks). */
    reconnectNow() {
      if (this.stopped) return;
      if (this.timer !== null) window.clearTimeout(this.timer);
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000, "reconnecting");
      this.attempt = 0;
      this.connect();
    }

    /** Leave the interview on this tab (it goes on on the server until it ends). */
    stop() {
      this.stopped = true;
      if (this.timer !== null) window.clearTimeout(this.timer);
      if (this.saveTimer !== null) window.clearTimeout(this.saveTimer);
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000, "left the interview");
      forget();
      this.hooks.onConn("idle");
    }
  }

  return { InterviewConnection, saved, forget, newId };
})();
