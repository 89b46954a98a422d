// Mentara session inspector: lists sessions (GET /v1/admin/sessions) and watches one live,
// read-only, over the admin WebSocket (PROTOCOL.md §1, §3, §5).
//
// Rules this file keeps:
// - Session content is hostile (candidates type it). It is only ever put in the page as text:
//   textContent, Text nodes and append(string). Nothing here uses innerHTML, outerHTML,
//   insertAdjacentHTML, document.write or eval; the page's CSP forbids inline script anyway.
// - The admin token lives in sessionStorage (gone when the tab closes) and travels only in an
//   Authorization header (HTTP) or the socket's first `auth` frame; never in a URL.
// - A dropped socket reconnects with backoff and resumes from the last seq shown; events at
//   or below it are dropped, so a replay never duplicates text.
"use strict";

(() => {
  const TOKEN_KEY = "mentara.admin.token";
  const SUBPROTOCOL = "mentara.v1.json";
  const PAGE_SIZE = 50;
  const AUTO_REFRESH_MS = 5000;
  // Close codes after which reconnecting cannot help (PROTOCOL.md §6).
  const FINAL_CLOSES = {
    1000: "closed",
    1008: "refused by policy (is the token an admin's?)",
    4001: "not authenticated: check the token",
    4004: "session not found or deleted",
  };

  const byId = (id) => {
    const node = document.getElementById(id);
    if (!node) throw new Error(`inspector page has no #${id}`);
    return node;
  };

  /** An element with text children only: strings become Text nodes, never markup. */
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.append(...children.map((c) => (c instanceof Node ? c : String(c ?? ""))));
    return node;
  }

  const setText = (id, value) => {
    byId(id).textContent = String(value ?? "–");
  };

  const fmtTime = (ms) => (typeof ms === "number" ? new Date(ms).toLocaleTimeString() : "–");
  const fmtDateTime = (ms) => (typeof ms === "number" ? new Date(ms).toLocaleString() : "–");

  // --- token ------------------------------------------------------------------------------

  const token = {
    get: () => sessionStorage.getItem(TOKEN_KEY) || "",
    set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
    clear: () => sessionStorage.removeItem(TOKEN_KEY),
  };

  function showTokenState() {
    setText("token-state", token.get() ? "token set for this tab" : "no token");
  }

  // --- session list -----------------------------------------------------------------------

  let nextCursor = null;
  let listing = false;

  async function api(path) {
    const bearer = token.get();
    if (!bearer) throw new Error("enter an admin token first");
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${bearer}` },
      cache: "no-store",
      credentials: "omit",
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const err = body && body.error ? `${body.error.code}: ${body.error.message}` : "";
      throw new Error(`HTTP ${response.status} ${err}`.trim());
    }
    return body;
  }

  function sessionRow(s) {
    const row = el("tr", s.status === "live" ? "live" : "ended");
    row.dataset.sessionId = String(s.id);
    const owner = s.owner ? `${s.owner.worker} #${s.owner.fence ?? "?"}` : "–";
    const counts = s.counts || {};
    const question = (s.question && (s.question.title || s.question.id)) || "–";
    const status = s.status === "ended" && s.end_reason ? `ended (${s.end_reason})` : s.status;
    const idCell = el("td", "id", el("code", null, String(s.id).slice(0, 12)));
    idCell.title = String(s.id);
    const watch = el("button", "watch", "Watch");
    watch.type = "button";
    watch.addEventListener("click", () => startWatch(String(s.id)));
    row.append(
      el("td", "started", fmtDateTime(s.started_at)),
      idCell,
      el("td", "user", s.user_id),
      el("td", "track", s.track),
      el("td", "question", question),
      el("td", "status", status),
      el("td", "phase", s.phase ?? "–"),
      el("td", "num seq", s.last_seq),
      el("td", "owner", owner),
      el(
        "td",
        "num counts",
        `${counts.candidate_messages ?? 0} / ${counts.interviewer_turns ?? 0} / ${counts.code_snapshots ?? 0}`,
      ),
      el("td", null, watch),
    );
    if (watcher && watcher.sessionId === s.id) row.classList.add("watched");
    return row;
  }

  async function loadSessions({ more = false } = {}) {
    if (listing) return;
    if (!token.get()) {
      setText("list-state", "enter an admin token to list sessions");
      return;
    }
    listing = true;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const status = byId("status-filter").value;
    if (status) params.set("status", status);
    if (more && nextCursor) params.set("cursor", nextCursor);
    setText("list-state", "loading…");
    try {
      const page = await api(`/v1/admin/sessions?${params}`);
      const rows = (page.sessions || []).map(sessionRow);
      const body = byId("session-rows");
      if (more) body.append(...rows);
      else body.replaceChildren(...rows);
      nextCursor = page.next_cursor || null;
      byId("load-more").hidden = !nextCursor;
      setText("list-state", `${body.children.length} shown · updated ${fmtTime(Date.now())}`);
    } catch (err) {
      setText("list-state", `could not list sessions: ${err.message}`);
    } finally {
      listing = false;
    }
  }

  // --- one watched session ----------------------------------------------------------------

  /** What the watched session looks like, rebuilt from events (or a snapshot). */
  class SessionView {
    constructor() {
      this.turns = new Map(); // turn_id -> {li, text (a Text node)}
      this.scores = new Map(); // dimension -> {score, change, reason} cells
      this.reset();
    }

    reset() {
      this.turns.clear();
      this.scores.clear();
      byId("transcript").replaceChildren();
      byId("score-rows").replaceChildren();
      byId("code").textContent = "";
      byId("notices").textContent = "";
      for (const id of ["code-meta", "code-result"]) byId(id).textContent = "";
      for (const id of ["fact-track", "fact-question", "fact-phase", "fact-status", "report"]) {
        setText(id, "–");
      }
      setText("fact-seq", 0);
    }

    notice(text) {
      byId("notices").append(`${text}\n`);
    }

    turn(turnId, role, seq) {
      let turn = this.turns.get(turnId);
      if (!turn) {
        const text = document.createTextNode("");
        const li = el(
          "li",
          null,
          el("span", "who", role),
          el("span", "text", text),
          el("span", "meta", `#${seq}`),
        );
        li.dataset.role = role;
        li.dataset.turnId = String(turnId);
        byId("transcript").append(li);
        turn = { li, text };
        this.turns.set(turnId, turn);
      }
      return turn;
    }

    dimension(name) {
      let cells = this.scores.get(name);
      if (!cells) {
        cells = { score: el("td", "num score", "–"), change: el("td", "num change"), reason: el("td", "reason") };
        const row = el("tr", null, el("td", "dimension", name), cells.score, cells.change, cells.reason);
        row.dataset.dimension = String(name);
        byId("score-rows").append(row);
        this.scores.set(name, cells);
      }
      return cells;
    }

    showQuestion(question) {
      if (question) setText("fact-question", question.title || question.id);
    }

    showCode(code) {
      setText("code-meta", `v${code.version} · ${code.language}`);
      byId("code").textContent = String(code.source ?? "");
    }

    /** One session event (§4). Unknown types are ignored, as clients must. */
    apply(e) {
      setText("fact-seq", e.seq);
      switch (e.type) {
        case "session.started":
          setText("fact-track", e.track);
          setText("fact-status", "live");
          this.showQuestion(e.question);
          for (const name of (e.rubric && e.rubric.dimensions) || []) this.dimension(name);
          break;
        case "phase":
          setText(
            "fact-phase",
            e.deadline_ts ? `${e.name} (until ${fmtTime(e.deadline_ts)})` : e.name,
          );
          break;
        case "candidate.message":
          this.turn(e.turn_id, "candidate", e.seq).text.appendData(String(e.text ?? ""));
          break;
        case "interviewer.turn.start":
          this.turn(e.turn_id, "interviewer", e.seq).li.classList.add("streaming");
          break;
        case "interviewer.delta":
          this.turn(e.turn_id, "interviewer", e.seq).text.appendData(String(e.text ?? ""));
          break;
        case "interviewer.turn.end": {
          const turn = this.turn(e.turn_id, "interviewer", e.seq);
          turn.li.classList.remove("streaming");
          if (e.stop_reason && e.stop_reason !== "end_turn") {
            turn.li.append(el("span", "meta", `(${e.stop_reason})`));
          }
          break;
        }
        case "code.snapshot":
          this.showCode(e);
          break;
        case "code.result": {
          const tests = Array.isArray(e.tests) ? e.tests : [];
          const passed = tests.filter((t) => t && t.passed).length;
          setText(
            "code-result",
            `run of v${e.version}: ${e.status}, ${passed}/${tests.length} tests passed in ${e.duration_ms} ms`,
          );
          break;
        }
        case "score.delta": {
          const cells = this.dimension(e.dimension);
          const delta = Number(e.delta);
          cells.score.textContent = String(e.score);
          cells.change.textContent = `${delta >= 0 ? "+" : ""}${delta}`;
          cells.change.className = `num change ${delta >= 0 ? "delta-up" : "delta-down"}`;
          cells.reason.textContent = String(e.reason ?? "");
          break;
        }
        case "session.ended":
          setText("fact-status", `ended (${e.reason})`);
          break;
        case "report.ready":
          setText("report", `overall ${e.overall}: ${e.summary ?? ""}`);
          break;
        default:
          break;
      }
    }

    /** A `snapshot`'s state (§5): the session as of one event, in place of a replay. */
    applySnapshot(state) {
      setText("fact-track", state.track);
      setText("fact-status", state.status === "active" ? "live" : state.status);
      setText("fact-phase", state.phase ?? "–");
      this.showQuestion(state.question);
      for (const entry of state.transcript || []) {
        this.turn(entry.turn_id, entry.role, entry.seq).text.appendData(String(entry.text ?? ""));
      }
      if (state.code) this.showCode(state.code);
      for (const [name, score] of Object.entries(state.scores || {})) {
        this.dimension(name).score.textContent = String(score);
      }
    }
  }

  function setConn(state, detail) {
    const conn = byId("conn");
    conn.dataset.state = state;
    conn.textContent = detail ? `${state}: ${detail}` : state;
  }

  /** One watched session: a socket that reconnects and resumes until stopped. */
  class Watcher {
    constructor(sessionId) {
      this.sessionId = sessionId;
      this.lastSeq = 0;
      this.attempt = 0;
      this.socket = null;
      this.timer = null;
      this.stopped = false;
      this.view = new SessionView();
      this.connect();
    }

    connect() {
      this.timer = null;
      const url = new URL("/v1/admin/watch", window.location.href);
      url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
      setConn("connecting");
      const socket = new WebSocket(url, [SUBPROTOCOL]);
      this.socket = socket;
      socket.addEventListener("open", () => {
        if (socket !== this.socket) return;
        setConn("authenticating");
        socket.send(JSON.stringify({ type: "auth", token: token.get() }));
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

    onFrame(socket, frame) {
      switch (frame.type) {
        case "welcome":
          setConn("attaching", `from seq ${this.lastSeq}`);
          socket.send(
            JSON.stringify({ type: "watch", session_id: this.sessionId, last_seq: this.lastSeq }),
          );
          return;
        case "resumed":
          this.attempt = 0;
          setConn("live", `resumed after seq ${this.lastSeq}, ${frame.replayed} replayed`);
          return;
        case "snapshot":
          this.attempt = 0;
          this.view.reset();
          this.view.applySnapshot(frame.state || {});
          this.lastSeq = frame.seq;
          setText("fact-seq", frame.seq);
          setConn("live", `from a snapshot at seq ${frame.seq}`);
          return;
        case "error":
          this.view.notice(`error ${frame.code}: ${frame.message}`);
          return;
        default:
          break;
      }
      if (typeof frame.seq !== "number") return; // other control frames: ack, pong, …
      if (frame.seq <= this.lastSeq) return; // already shown
      this.lastSeq = frame.seq;
      this.view.apply(frame);
    }

    onClose(event) {
      if (this.stopped) return;
      const reason = event.reason ? ` ${event.reason}` : "";
      if (event.code in FINAL_CLOSES) {
        setConn("closed", `${event.code} ${FINAL_CLOSES[event.code]}${reason}`);
        return;
      }
      // 1001 (deploy), 1006 (dropped), 1011, 1013, 4003: come back and resume (§6).
      const delay = Math.min(15000, 400 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      setConn("reconnecting", `in ${(delay / 1000).toFixed(1)} s after close ${event.code}${reason}`);
      this.timer = window.setTimeout(() => this.connect(), delay);
    }

    stop() {
      this.stopped = true;
      if (this.timer !== null) window.clearTimeout(this.timer);
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000, "inspector stopped");
      setConn("idle");
    }
  }

  let watcher = null;

  function startWatch(sessionId) {
    if (!token.get()) {
      setText("list-state", "enter an admin token first");
      return;
    }
    if (watcher) watcher.stop();
    byId("watch-panel").hidden = false;
    byId("watch-id").textContent = sessionId;
    for (const row of byId("session-rows").children) {
      row.classList.toggle("watched", row.dataset.sessionId === sessionId);
    }
    watcher = new Watcher(sessionId);
  }

  function stopWatch() {
    if (watcher) watcher.stop();
    watcher = null;
    byId("watch-panel").hidden = true;
  }

  // --- wiring -----------------------------------------------------------------------------

  function init() {
    showTokenState();
    byId("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = byId("token");
      const value = input.value.trim();
      input.value = "";
      if (value) token.set(value);
      showTokenState();
      loadSessions();
    });
    byId("forget-token").addEventListener("click", () => {
      token.clear();
      stopWatch();
      byId("session-rows").replaceChildren();
      showTokenState();
      setText("list-state", "");
    });
    byId("refresh").addEventListener("click", () => loadSessions());
    byId("status-filter").addEventListener("change", () => loadSessions());
    byId("load-more").addEventListener("click", () => loadSessions({ more: true }));
    byId("stop-watch").addEventListener("click", stopWatch);
    window.setInterval(() => {
      if (byId("auto-refresh").checked && !document.hidden && !nextCursorShown()) loadSessions();
    }, AUTO_REFRESH_MS);
    loadSessions();
  }

  // Auto-refresh reloads the first page only; it pauses while more pages are shown.
  const nextCursorShown = () => byId("session-rows").children.length > PAGE_SIZE;

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
