// Mentara candidate page, the view: what one interview looks like, rebuilt from its session
// events (PROTOCOL.md §4) or a snapshot (§5), and a report (GET /v1/sessions/{id}/report).
//
// Session content is hostile (anything a candidate or the candidate's code wrote ends up
// here): it is only ever put in the page as text (textContent, Text nodes, append(string)).
// Nothing here uses innerHTML, outerHTML, insertAdjacentHTML, document.write or eval.
"use strict";

window.MentaraView = (() => {
  const byId = (id) => {
    const node = document.getElementById(id);
    if (!node) throw new Error(`candidate page has no #${id}`);
    return node;
  };

  /** An element with text children only: strings become Text nodes, never markup. */
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.append(...children.map((c) => (c instanceof Node ? c : String(c ?? ""))));
    return node;
  }

  const fmtScore = (v) => (typeof v === "number" ? String(Math.round(v * 100) / 100) : "–");
  const fmtDelta = (v) => `${v >= 0 ? "+" : ""}${fmtScore(v)}`;
  const PHASES = {
    intro: "Introduction",
    problem: "The problem",
    coding: "Coding",
    followup: "Follow-up",
    wrapup: "Wrap-up",
  };

  /** One interview as the candidate sees it. ``hooks.onCode(code)`` gets each code snapshot
   *  (to update the editor); ``hooks.onSpeaking(bool)`` when the interviewer starts or stops. */
  class InterviewView {
    constructor(hooks) {
      this.hooks = hooks;
      this.anchors = new Map(); // seq -> element the event is shown in
      this.turns = new Map(); // turn_id -> {li, text}
      this.scores = new Map(); // dimension -> cells
      this.entries = 0;
      this.speaking = null; // turn_id of the interviewer's turn being spoken
      this.reset();
    }

    reset() {
      this.anchors.clear();
      this.turns.clear();
      this.scores.clear();
      this.entries = 0;
      this.setSpeaking(null);
      for (const id of ["transcript", "score-rows", "examples", "tests", "report-body"]) {
        byId(id).replaceChildren();
      }
      for (const id of ["question-prompt", "run-result", "code-meta", "stdout"]) {
        byId(id).textContent = "";
      }
      byId("stdout").hidden = true;
      byId("report").hidden = true;
      byId("phase").textContent = "–";
      byId("interview-heading").textContent = "Interview";
      this.status = "active";
    }

    setSpeaking(turnId) {
      this.speaking = turnId;
      if (this.hooks.onSpeaking) this.hooks.onSpeaking(turnId !== null);
    }

    /** A transcript entry; its element gets an id of the page's own making (never the data's). */
    entry(role, seq) {
      this.entries += 1;
      const text = document.createTextNode("");
      const who = role === "candidate" ? "You" : role === "interviewer" ? "Interviewer" : "Run";
      const li = el("li", null, el("span", "who", who), el("span", "text", text));
      li.id = `entry-${this.entries}`;
      li.dataset.role = role;
      li.tabIndex = -1; // focusable when an evidence link jumps to it
      byId("transcript").append(li);
      this.anchor(seq, li);
      return { li, text };
    }

    anchor(seq, element) {
      if (typeof seq === "number" && !this.anchors.has(seq)) this.anchors.set(seq, element);
      element.dataset.seqs = `${element.dataset.seqs || ""} ${seq}`.trim();
    }

    turn(turnId, role, seq) {
      let turn = this.turns.get(turnId);
      if (!turn) {
        turn = this.entry(role, seq);
        turn.li.dataset.turnId = String(turnId);
        this.turns.set(turnId, turn);
      } else {
        this.anchor(seq, turn.li);
      }
      return turn;
    }

    showQuestion(question) {
      if (!question) return;
      byId("interview-heading").textContent = String(question.title || question.id || "Interview");
      byId("question-prompt").textContent = String(question.prompt ?? "");
      const examples = (Array.isArray(question.examples) ? question.examples : []).map((x) =>
        el(
          "li",
          null,
          el("code", null, `${x.input ?? ""}`),
          " → ",
          el("code", null, `${x.output ?? ""}`),
          x.explanation ? ` (${x.explanation})` : "",
        ),
      );
      byId("examples").replaceChildren(...examples);
    }

    dimension(name) {
      let cells = this.scores.get(name);
      if (!cells) {
        cells = {
          score: el("td", "num score", "–"),
          change: el("td", "num change"),
          reason: el("td", "reason"),
          evidence: el("td", "evidence"),
        };
        const row = el(
          "tr",
          null,
          el("th", "dimension", String(name).replaceAll("_", " ")),
          cells.score,
          cells.change,
          cells.reason,
          cells.evidence,
        );
        row.firstChild.scope = "row";
        row.dataset.dimension = String(name);
        byId("score-rows").append(row);
        this.scores.set(name, cells);
      }
      return cells;
    }

    /** Links to the transcript entries an event cites; each moves focus to its entry. */
    evidenceLinks(seqs) {
      const links = [];
      for (const seq of Array.isArray(seqs) ? seqs : []) {
        const target = this.anchors.get(seq);
        if (!target) continue;
        const a = el("a", "evidence-link", `#${seq}`);
        a.href = `#${target.id}`;
        a.setAttribute("aria-label", `evidence: event ${seq}`);
        a.addEventListener("click", (event) => {
          event.preventDefault();
          for (const old of document.querySelectorAll("#transcript li.cited")) {
            old.classList.remove("cited");
          }
          target.classList.add("cited");
          target.scrollIntoView({ block: "center" });
          target.focus();
        });
        if (links.length) links.push(" ");
        links.push(a);
      }
      return links;
    }

    showCodeResult(e) {
      const tests = Array.isArray(e.tests) ? e.tests : [];
      const passed = tests.filter((t) => t && t.passed).length;
      const summary = `Run of version ${e.version}: ${e.status}, ${passed} of ${tests.length} tests passed (${e.duration_ms} ms)`;
      byId("run-result").textContent = summary;
      byId("run-result").dataset.status = String(e.status);
      byId("tests").replaceChildren(
        ...tests.map((t) => {
          const li = el(
            "li",
            t.passed ? "pass" : "fail",
            el("span", "verdict", t.passed ? "passed" : "failed"),
            " ",
            el("code", null, String(t.name ?? "")),
            t.message ? el("span", "message", ` ${t.message}`) : "",
          );
          return li;
        }),
      );
      const out = byId("stdout");
      out.textContent = String(e.stdout_tail ?? "");
      out.hidden = !e.stdout_tail;
      this.entry("run", e.seq).text.appendData(summary);
    }

    /** One session event. Unknown types are ignored, as clients must. */
    apply(e) {
      switch (e.type) {
        case "session.started":
          this.showQuestion(e.question);
          for (const name of (e.rubric && e.rubric.dimensions) || []) this.dimension(name);
          break;
        case "phase":
          byId("phase").textContent = PHASES[e.name] || String(e.name);
          break;
        case "candidate.message":
          this.turn(e.turn_id, "candidate", e.seq).text.appendData(String(e.text ?? ""));
          break;
        case "interviewer.turn.start":
          this.turn(e.turn_id, "interviewer", e.seq).li.classList.add("streaming");
          this.setSpeaking(e.turn_id);
          break;
        case "interviewer.delta":
          this.turn(e.turn_id, "interviewer", e.seq).text.appendData(String(e.text ?? ""));
          break;
        case "interviewer.turn.end": {
          const turn = this.turn(e.turn_id, "interviewer", e.seq);
          turn.li.classList.remove("streaming");
          if (e.stop_reason && e.stop_reason !== "end_turn") {
            turn.li.append(el("span", "meta", ` (${e.stop_reason})`));
          }
          if (this.speaking === e.turn_id) this.setSpeaking(null);
          break;
        }
        case "code.snapshot":
          byId("code-meta").textContent = `version ${e.version}`;
          this.anchor(e.seq, byId("code-section"));
          if (this.hooks.onCode) this.hooks.onCode(e);
          break;
        case "code.result":
          this.showCodeResult(e);
          break;
        case "score.delta": {
          const cells = this.dimension(e.dimension);
          const delta = Number(e.delta);
          cells.score.textContent = fmtScore(e.score);
          cells.change.textContent = fmtDelta(delta);
          cells.change.className = `num change ${delta >= 0 ? "delta-up" : "delta-down"}`;
          cells.reason.textContent = String(e.reason ?? "");
          cells.evidence.replaceChildren(...this.evidenceLinks(e.evidence));
          break;
        }
        case "session.ended":
          this.status = "ended";
          this.setSpeaking(null);
          byId("phase").textContent = `Ended (${String(e.reason).replaceAll("_", " ")})`;
          break;
        case "report.ready":
          this.status = "reported";
          break;
        default:
          break;
      }
    }

    /** A `snapshot`'s state: the interview as of one event, in place of a replay. */
    applySnapshot(state) {
      this.showQuestion(state.question);
      byId("phase").textContent = PHASES[state.phase] || "–";
      for (const entry of state.transcript || []) {
        this.turn(entry.turn_id, entry.role, entry.seq).text.appendData(String(entry.text ?? ""));
      }
      for (const [name, score] of Object.entries(state.scores || {})) {
        this.dimension(name).score.textContent = fmtScore(score);
      }
      if (state.code && this.hooks.onCode) this.hooks.onCode(state.code);
      if (state.status && state.status !== "active") this.status = "ended";
    }
  }

  /** A report (GET /v1/sessions/{id}/report) into ``container``, as text. */
  function renderReport(container, report) {
    const dims = (Array.isArray(report.dimensions) ? report.dimensions : []).map((d) =>
      el(
        "li",
        null,
        el("strong", null, String(d.title || d.name)),
        `: ${fmtScore(d.score)}`,
        d.band_label ? ` (${d.band_label})` : "",
        d.band_description ? el("span", "hint", ` ${d.band_description}`) : "",
      ),
    );
    const findings = (title, list) => {
      const items = (Array.isArray(list) ? list : []).map((f) =>
        el(
          "li",
          null,
          el("strong", null, String(f.title || f.dimension)),
          ` ${fmtScore(f.score)}: `,
          (Array.isArray(f.evidence) ? f.evidence : []).map((q) => q.note).join("; "),
        ),
      );
      return items.length ? [el("h4", null, title), el("ul", null, ...items)] : [];
    };
    container.replaceChildren(
      el(
        "p",
        "overall",
        `Overall ${fmtScore(report.overall)}`,
        report.band_label ? ` · ${report.band_label}` : "",
      ),
      el("p", "summary", String(report.summary ?? "")),
      el("h4", null, "By dimension"),
      el("ul", "report-dimensions", ...dims),
      ...findings("Strengths", report.strengths),
      ...findings("To work on", report.weaknesses),
    );
  }

  return { InterviewView, renderReport, el, byId, fmtScore };
})();
