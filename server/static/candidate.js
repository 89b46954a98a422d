// Mentara candidate page: sign in, pick a question, take the interview, read the report.
// The view is candidate_view.js, the connection candidate_socket.js; this file wires them to
// the page, the HTTP API (PROTOCOL.md §7) and the code editor.
//
// - The token lives in sessionStorage (gone when the tab closes). Over HTTP it travels in an
//   Authorization header, over the socket only in the `auth` frame; never in a URL.
// - In development (the server signs its own tokens) a name is enough: POST /v1/dev/token.
// - Errors and closes are shown as what happened and what to do about it.
"use strict";

(() => {
  const { InterviewView, renderReport, el, byId } = window.MentaraView;
  const { InterviewConnection, saved, forget } = window.MentaraSocket;
  const TOKEN_KEY = "mentara.candidate.token";
  const CODE_DEBOUNCE_MS = 600;

  // --- token and HTTP ---------------------------------------------------------------------

  const token = {
    get: () => sessionStorage.getItem(TOKEN_KEY) || "",
    set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
    clear: () => sessionStorage.removeItem(TOKEN_KEY),
  };

  class HttpError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { method = "GET", body = undefined, auth = true } = {}) {
    const headers = {};
    if (auth) headers.Authorization = `Bearer ${token.get()}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const err = data && data.error ? data.error : { code: "http", message: response.statusText };
      throw new HttpError(response.status, err.code, err.message);
    }
    return data;
  }

  /** The user id inside the token, for display only (the server verifies it). */
  function tokenUser(value) {
    try {
      const payload = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return String(JSON.parse(atob(payload)).sub || "");
    } catch {
      return "";
    }
  }

  // --- alerts: what happened and what to do -----------------------------------------------

  let alertAction = null;

  function showAlert(kind, text, actionLabel = null, action = null) {
    const box = byId("alert");
    box.dataset.kind = kind;
    byId("alert-text").textContent = text;
    const button = byId("alert-action");
    button.hidden = !actionLabel;
    button.textContent = actionLabel || "";
    alertAction = action;
    box.hidden = false;
  }

  function clearAlert(kind = null) {
    const box = byId("alert");
    if (kind && box.dataset.kind !== kind) return;
    box.hidden = true;
    box.dataset.kind = "";
    alertAction = null;
  }

  // --- panels -------------------------------------------------------------------------------

  function showPanel(name) {
    for (const panel of ["signin", "home", "interview"]) {
      byId(`${panel}-panel`).hidden = panel !== name;
    }
    const signedIn = Boolean(token.get());
    byId("sign-out").hidden = !signedIn;
    byId("home").hidden = !signedIn || name === "home";
    // CodeMirror measures itself when shown: one set up inside a hidden panel needs a refresh.
    if (name === "interview" && editor) window.requestAnimationFrame(() => editor.refresh());
    const user = tokenUser(token.get());
    byId("who").textContent = signedIn ? `signed in${user ? ` as ${user}` : ""}` : "not signed in";
  }

  // --- sign-in ------------------------------------------------------------------------------

  async function offerDevSignIn() {
    try {
      await api("/v1/dev/token", { auth: false });
      byId("dev-signin-form").hidden = false;
    } catch {
      byId("dev-signin-form").hidden = true; // production: a token from the host app
    }
  }

  function signedIn() {
    showPanel("home");
    clearAlert("auth");
    if (interview) {
      // A sign-in asked for mid-interview: carry on where it stopped.
      showPanel("interview");
      interview.conn.reconnectNow();
      return;
    }
    loadHome();
  }

  function signOut() {
    leaveInterview();
    token.clear();
    forget();
    showPanel("signin");
    offerDevSignIn();
  }

  // --- home: questions, past interviews, plan and progress --------------------------------

  let questions = [];

  async function loadQuestions() {
    const data = await api("/v1/questions");
    questions = Array.isArray(data.questions) ? data.questions : [];
    const languages = Array.isArray(data.languages) && data.languages.length ? data.languages : ["python"];
    for (const id of ["language", "code-language"]) {
      byId(id).replaceChildren(...languages.map((l) => Object.assign(el("option", null, l), { value: l })));
    }
    fillQuestions();
  }

  function fillQuestions() {
    const track = byId("track").value;
    const options = questions
      .filter((q) => q.track === track)
      .map((q) => {
        const option = el("option", null, q.difficulty ? `${q.title} (${q.difficulty})` : q.title);
        option.value = String(q.id);
        return option;
      });
    byId("question").replaceChildren(Object.assign(el("option", null, "Any question"), { value: "" }), ...options);
    byId("language").disabled = track !== "coding";
  }

  const questionTitle = (id) => {
    const q = questions.find((x) => x.id === id);
    return q ? q.title : id;
  };

  async function loadSessions() {
    const list = byId("past-sessions");
    try {
      const data = await api("/v1/sessions");
      const sessions = Array.isArray(data.sessions) ? data.sessions : [];
      if (!sessions.length) {
        list.replaceChildren(el("li", null, "No interviews yet."));
        return;
      }
      list.replaceChildren(...sessions.map(sessionItem));
    } catch (err) {
      list.replaceChildren(el("li", null, `Could not list your interviews: ${err.message}`));
    }
  }

  function sessionItem(s) {
    const when = typeof s.created_at_ms === "number" ? new Date(s.created_at_ms).toLocaleString() : "";
    const status = s.status === "active" ? "in progress" : `ended${s.end_reason ? ` (${String(s.end_reason).replaceAll("_", " ")})` : ""}`;
    const li = el("li", null, el("span", "past-title", `${questionTitle(s.question_id)} · ${String(s.track).replaceAll("_", " ")}`), ` · ${when} · ${status} `);
    li.dataset.sessionId = String(s.id);
    if (s.status === "active") {
      const resume = el("button", "resume", "Continue");
      resume.type = "button";
      resume.addEventListener("click", () => enterInterview({ sessionId: String(s.id) }));
      li.append(resume);
    } else {
      const open = el("button", "open-report", "Report");
      open.type = "button";
      open.setAttribute("aria-label", `Report of ${questionTitle(s.question_id)}, ${when}`);
      open.addEventListener("click", () => showPastReport(String(s.id)));
      li.append(open);
    }
    return li;
  }

  async function showPastReport(sessionId) {
    const section = byId("past-report");
    const body = byId("past-report-body");
    section.hidden = false;
    body.textContent = "Loading the report…";
    try {
      renderReport(body, await api(`/v1/sessions/${encodeURIComponent(sessionId)}/report`));
    } catch (err) {
      body.textContent = err.status === 404 ? "The report is not ready yet: try again in a minute." : `Could not load the report: ${err.message}`;
    }
    byId("past-report-heading").focus();
  }

  async function loadAccount() {
    const plan = byId("plan");
    const progress = byId("progress");
    try {
      const me = await api("/v1/me");
      const quota = me.quota || {};
      const left = quota.left === null || quota.left === undefined ? "unlimited" : String(quota.left);
      const resets = quota.resets_at ? `; resets ${new Date(quota.resets_at).toLocaleDateString()}` : "";
      plan.textContent = `Plan: ${me.plan ?? "–"} · interviews left this period: ${left}${resets}`;
    } catch (err) {
      plan.textContent = err.status === 404 || err.status === 405 ? "Plan details are not available on this server." : `Could not load your plan: ${err.message}`;
    }
    try {
      const data = await api("/v1/me/progress");
      const tracks = Array.isArray(data.tracks) ? data.tracks : [];
      if (!tracks.length) {
        progress.replaceChildren(el("p", null, "Your progress shows here after your first report."));
        return;
      }
      progress.replaceChildren(
        ...tracks.map((t) =>
          el(
            "div",
            "track-progress",
            el("h4", null, `${String(t.track).replaceAll("_", " ")}: ${t.sessions} interview(s)`),
            el(
              "ul",
              null,
              ...(Array.isArray(t.dimensions) ? t.dimensions : []).map((d) =>
                el("li", null, `${d.title || d.name}: latest ${d.latest ?? "–"}, trend ${d.trend ?? "–"}`),
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      progress.replaceChildren(el("p", null, err.status === 404 || err.status === 405 ? "Progress is not available on this server." : `Could not load your progress: ${err.message}`));
    }
  }

  async function loadHome() {
    showPanel("home");
    byId("past-report").hidden = true;
    try {
      await loadQuestions();
      byId("home-state").textContent = "";
    } catch (err) {
      if (err.status === 401) return needSignIn();
      byId("home-state").textContent = `Could not load the questions: ${err.message}`;
    }
    await Promise.all([loadSessions(), loadAccount()]);
  }

  function needSignIn() {
    token.clear();
    showPanel("signin");
    offerDevSignIn();
    showAlert("auth", "Your sign-in has expired or is not valid: sign in again to continue.", "Sign in", () => byId(byId("dev-signin-form").hidden ? "token" : "dev-user").focus());
  }

  // --- the code editor ----------------------------------------------------------------------

  let editor = null;
  let applyingRemote = false;
  let codeTimer = null;

  function editorValue() {
    return editor ? editor.getValue() : byId("code").value;
  }

  function setEditorValue(value) {
    applyingRemote = true;
    try {
      if (editor) editor.setValue(value);
      else byId("code").value = value;
    } finally {
      applyingRemote = false;
    }
  }

  function modeOf(language) {
    return language === "javascript" ? "javascript" : "python";
  }

  function setupEditor() {
    const textarea = byId("code");
    if (window.CodeMirror && !editor) {
      editor = window.CodeMirror.fromTextArea(textarea, {
        mode: "python",
        lineNumbers: true,
        indentUnit: 4,
        screenReaderLabel: "Code editor",
        viewportMargin: Infinity,
        // Tab moves focus out, as everywhere else on the page (no keyboard trap).
        extraKeys: { Tab: false, "Shift-Tab": false },
      });
      editor.on("change", onCodeChanged);
    } else {
      textarea.addEventListener("input", onCodeChanged);
    }
    byId("code-language").addEventListener("change", () => {
      if (editor) editor.setOption("mode", modeOf(byId("code-language").value));
      onCodeChanged();
    });
  }

  function onCodeChanged() {
    if (applyingRemote || !interview) return;
    if (codeTimer !== null) window.clearTimeout(codeTimer);
    codeTimer = window.setTimeout(sendCode, CODE_DEBOUNCE_MS);
  }

  function sendCode() {
    if (codeTimer !== null) window.clearTimeout(codeTimer);
    codeTimer = null;
    if (!interview) return;
    interview.lastSentCode = editorValue();
    interview.conn.send({ type: "code.update", language: byId("code-language").value, source: interview.lastSentCode });
  }

  /** A code snapshot from the session: shown unless the candidate has edits not yet sent. */
  function onRemoteCode(code) {
    if (!interview || !interview.conn) return;
    const localEdits = codeTimer !== null || [...interview.conn.pending.values()].some((f) => f.type === "code.update");
    if (localEdits) return;
    if (typeof code.language === "string") {
      byId("code-language").value = code.language;
      if (editor) editor.setOption("mode", modeOf(code.language));
    }
    if (editorValue() !== code.source) setEditorValue(String(code.source ?? ""));
  }

  // --- the interview ------------------------------------------------------------------------

  let interview = null; // {conn, view, lastSentCode, delivered: ids of answers in the transcript}

  function setConn(state, detail) {
    const conn = byId("conn");
    conn.dataset.state = state;
    const labels = { live: "connected", resuming: "catching up", starting: "starting" };
    conn.textContent = `${labels[state] || state}${detail ? `: ${detail}` : ""}`;
    if (state === "live") clearAlert("connection");
  }

  function onSpeaking(speaking) {
    byId("interrupt").disabled = !speaking;
    renderOutbox();
  }

  function renderOutbox() {
    if (!interview || !interview.conn) return;
    const speaking = interview.view.speaking !== null;
    const items = [...interview.conn.pending.values()]
      .filter((f) => f.type === "candidate.message" && !interview.delivered.has(f.id))
      .map((f) => {
        const li = el("li", null, el("span", "who", "You"), el("span", "text", f.text), el("span", "meta", speaking ? " (waiting: the interviewer is speaking)" : " (sending…)"));
        li.dataset.frameId = String(f.id);
        return li;
      });
    byId("outbox").replaceChildren(...items);
  }

  function onControl(frame, sent) {
    renderOutbox();
    if (frame.type === "ack" && sent && sent.type === "session.end") {
      byId("report").hidden = false;
      byId("report-body").textContent = "Writing your report…";
    }
    if (frame.type !== "error") return;
    const what = sent ? sent.type : "";
    switch (frame.code) {
      case "quota_exceeded":
        // Nothing was created: leave the interview that never started, say why.
        leaveInterview(true);
        showAlert("quota", `You have used this period's interviews of your plan. ${frame.message}`, "See your plan", () => byId("account-heading").scrollIntoView());
        break;
      case "llm_unavailable":
        if (sent && sent.type === "session.start") {
          showAlert("llm", "The interviewer cannot start right now (its language model is unavailable).", "Try again", () => {
            clearAlert();
            interview.conn.start = { ...sent, id: window.MentaraSocket.newId() };
            interview.conn.reconnectNow();
          });
        } else {
          showAlert("llm", "The interviewer could not answer (its language model is unavailable right now). Your interview is saved: send your next answer to try again.", "Write an answer", () => {
            clearAlert();
            byId("answer").focus();
          });
        }
        break;
      case "sandbox_unavailable":
        byId("run-result").textContent = "Your code was not run.";
        showAlert("sandbox", "Code cannot run safely on this server right now, so nothing ran. Keep explaining your approach: the interview goes on.");
        break;
      case "rate_limited":
        showAlert("rate", `Too fast: ${frame.message}`, what ? "Try again" : null, () => {
          clearAlert();
          if (sent) interview.conn.send({ ...sent, id: undefined });
        });
        break;
      case "unauthorized":
        needSignIn();
        break;
      case "session_ended":
        showAlert("ended", "This interview has ended.", "Back to your interviews", () => leaveInterview(true));
        break;
      case "not_found":
        if (what === "session.resume" || what === "session.start" || !what) {
          showAlert("gone", `This interview cannot be found: ${frame.message}`, "Back to your interviews", () => leaveInterview(true));
        } else {
          showAlert("error", frame.message);
        }
        break;
      default:
        showAlert("error", `${frame.message} (${frame.code})`);
        break;
    }
  }

  function onClose(code, reason, final) {
    const messages = {
      1001: "The server is restarting (going away). Reconnecting and picking up where you left off…",
      4003: "Your connection fell behind the interview (slow network). Reconnecting and catching up…",
      1013: "The server is busy. Reconnecting shortly…",
    };
    if (messages[code]) {
      showAlert("connection", messages[code], "Reconnect now", () => interview && interview.conn.reconnectNow());
      return;
    }
    if (!final) return; // a drop: the status line says it is reconnecting
    switch (code) {
      case 4001:
        needSignIn();
        break;
      case 4004:
        showAlert("gone", "This interview no longer exists (it was deleted).", "Back to your interviews", () => leaveInterview(true));
        break;
      case 1008:
        showAlert("policy", `The server closed the connection: ${reason || "refused by policy"}.`, "Back to your interviews", () => leaveInterview(true));
        break;
      default:
        break;
    }
  }

  function onEvent(e, live) {
    interview.view.apply(e);
    if (e.type === "report.ready") fetchReport();
    if (e.type === "session.ended" || e.type === "report.ready") {
      byId("end").disabled = true;
      byId("send").disabled = true;
      byId("run").disabled = true;
    }
    byId("last-seq").textContent = String(e.seq);
    if (e.type === "candidate.message" && interview.conn) {
      // In the transcript now: no longer shown as waiting, even before its ack arrives.
      for (const f of interview.conn.pending.values()) {
        if (f.type === "candidate.message" && f.text === e.text && !interview.delivered.has(f.id)) {
          interview.delivered.add(f.id);
          break;
        }
      }
    }
    if (e.type === "candidate.message" || e.type === "interviewer.turn.end") renderOutbox();
    if (live && e.type === "session.started") {
      const q = questions.find((x) => x.id === (e.question && e.question.id));
      if (!editorValue() && q && q.starter_code && q.starter_code.python && e.language === "python") {
        setEditorValue(q.starter_code.python);
      }
    }
  }

  async function fetchReport() {
    if (!interview || !interview.conn.sessionId) return;
    byId("report").hidden = false;
    const body = byId("report-body");
    try {
      renderReport(body, await api(`/v1/sessions/${encodeURIComponent(interview.conn.sessionId)}/report`));
    } catch (err) {
      body.textContent = `The report is ready but could not be loaded: ${err.message}`;
    }
  }

  function enterInterview({ sessionId = null, start = null, restore = null }) {
    leaveInterview();
    clearAlert();
    const view = new InterviewView({ onCode: onRemoteCode, onSpeaking });
    interview = { view, conn: null, lastSentCode: null, delivered: new Set() };
    setEditorValue("");
    for (const id of ["end", "send", "run"]) byId(id).disabled = false;
    showPanel("interview");
    interview.conn = new InterviewConnection(
      { sessionId, start, restore },
      {
        token: () => token.get(),
        onEvent,
        onReset: () => view.reset(),
        onSnapshot: (frame) => view.applySnapshot(frame.state || {}),
        onControl,
        onConn: setConn,
        onClose,
      },
    );
    interview.conn.saveNow();
    renderOutbox();
    if (interview.view.status !== "active") {
      for (const id of ["end", "send", "run"]) byId(id).disabled = true;
      if (interview.view.status === "reported") fetchReport();
    }
    interview.conn.connect();
    byId("interview-heading").focus();
  }

  function leaveInterview(goHome = false) {
    if (interview) {
      interview.conn.stop();
      interview = null;
    }
    if (codeTimer !== null) window.clearTimeout(codeTimer);
    codeTimer = null;
    if (goHome) {
      clearAlert();
      loadHome();
    }
  }

  function sendAnswer() {
    const input = byId("answer");
    const text = input.value.trim();
    if (!text || !interview) return;
    input.value = "";
    interview.conn.send({ type: "candidate.message", text });
    renderOutbox();
  }

  // --- wiring -------------------------------------------------------------------------------

  function init() {
    setupEditor();
    byId("interview-heading").tabIndex = -1;
    byId("past-report-heading").tabIndex = -1;
    byId("alert-action").addEventListener("click", () => {
      const action = alertAction;
      if (action) action();
    });
    byId("alert-dismiss").addEventListener("click", () => clearAlert());
    byId("dev-signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const user = byId("dev-user").value.trim();
      try {
        const minted = await api("/v1/dev/token", { method: "POST", body: { user }, auth: false });
        token.set(minted.token);
        byId("signin-state").textContent = "";
        signedIn();
      } catch (err) {
        byId("signin-state").textContent = `Could not sign in: ${err.message}`;
      }
    });
    byId("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = byId("token");
      const value = input.value.trim();
      input.value = "";
      if (!value) return;
      token.set(value);
      signedIn();
    });
    byId("sign-out").addEventListener("click", signOut);
    byId("home").addEventListener("click", () => leaveInterview(true));
    byId("track").addEventListener("change", fillQuestions);
    byId("refresh-sessions").addEventListener("click", loadSessions);
    byId("start-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const track = byId("track").value;
      const start = { type: "session.start", id: window.MentaraSocket.newId(), track };
      const questionId = byId("question").value;
      if (questionId) start.question_id = questionId;
      if (track === "coding") start.language = byId("language").value;
      byId("code-language").value = start.language || "python";
      enterInterview({ start });
    });
    byId("answer-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sendAnswer();
    });
    byId("answer").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendAnswer();
      }
    });
    byId("interrupt").addEventListener("click", () => {
      if (interview) interview.conn.send({ type: "interviewer.interrupt" });
    });
    byId("run").addEventListener("click", () => {
      if (!interview) return;
      if (codeTimer !== null || editorValue() !== interview.lastSentCode) sendCode();
      byId("run-result").textContent = "Running your code against the visible tests…";
      interview.conn.send({ type: "code.run" });
    });
    byId("end").addEventListener("click", () => {
      if (!interview) return;
      if (codeTimer !== null) sendCode();
      interview.conn.send({ type: "session.end" });
      byId("end").disabled = true;
    });
    window.addEventListener("pagehide", () => interview && interview.conn.saveNow());

    if (!token.get()) {
      showPanel("signin");
      offerDevSignIn();
      return;
    }
    const state = saved();
    if (state && (state.session_id || state.start)) {
      loadQuestions().catch(() => {});
      enterInterview({ restore: state });
      return;
    }
    loadHome();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
