"""The code runner in JavaScript: Node in the same sandbox as Python, judged the same way.

The module runs only where ``node`` is installed, and the check that decides it also
asserts that :func:`supported_languages` agrees with the host: a machine with node runs
every test here, a machine without it must report JavaScript unsupported. As in
``test_code_runner.py``, each attack runs for real; where the host lacks a sandbox feature,
the test asserts that the probe said so instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import textwrap
import time
from typing import Any

import pytest

from scoring.code_runner import (
    CodeRunner,
    RunLimits,
    RunResult,
    SandboxSupport,
    TestCase,
    run_tests,
    supported_languages,
)
from scoring.languages import camel_case, function_names
from scoring.question_bank import CodingQuestion, load_question_bank
from scoring.sandbox_probe import detect_sandbox_support
from tests.sandbox_support import gone, sandbox_processes

NODE = shutil.which("node")
assert ("javascript" in supported_languages()) is (NODE is not None), (
    "supported_languages() must offer JavaScript exactly when node is on PATH"
)
if NODE is None:
    pytest.skip(
        "node is not installed, and JavaScript is reported unsupported", allow_module_level=True
    )

FAST = RunLimits(cpu_seconds=1, wall_seconds=2.5)
ADD_TESTS = [
    TestCase(name="small", args=(1, 2), expected=3),
    TestCase(name="zeros", args=(0, 0), expected=0),
    TestCase(name="negative", args=(-5, 2), expected=-3),
]


def js(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


async def run(
    code: str,
    tests: list[TestCase] | None = None,
    *,
    limits: RunLimits | None = None,
    function_name: str = "add",
) -> RunResult:
    return await run_tests(
        js(code),
        function_name,
        ADD_TESTS if tests is None else tests,
        language="javascript",
        limits=limits or RunLimits(),
    )


async def host_still_works() -> None:
    result = await run("function add(a, b) { return a + b; }", limits=FAST)
    assert result.status == "passed", result
    assert sandbox_processes() == []


# Reference solutions of bank questions, in JavaScript, each found in another way.
REFERENCES = {
    "two-sum": """
        function twoSum(nums, target) {
          const seen = new Map(); // value -> index of an earlier element
          for (let i = 0; i < nums.length; i++) {
            const j = seen.get(target - nums[i]);
            if (j !== undefined) return [j, i];
            seen.set(nums[i], i);
          }
          throw new Error("no two numbers add up to the target");
        }
        """,
    "valid-parentheses": """
        const isValid = (s) => {
          const openingFor = { ")": "(", "]": "[", "}": "{" };
          const stack = [];
          for (const char of s) {
            if (char in openingFor) {
              if (stack.pop() !== openingFor[char]) return false;
            } else {
              stack.push(char);
            }
          }
          return stack.length === 0;
        };
        """,
    "merge-intervals": """
        function merge(intervals) {
          const sorted = [...intervals].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          const merged = [];
          for (const [start, end] of sorted) {
            const last = merged[merged.length - 1];
            if (last && start <= last[1]) last[1] = Math.max(last[1], end);
            else merged.push([start, end]);
          }
          return merged;
        }
        module.exports = { mergeIntervals: merge };
        """,
    "group-anagrams": """
        function group_anagrams(words) {
          const groups = new Map();
          for (const word of words) {
            const key = [...word].sort().join("");
            if (!groups.has(key)) groups.set(key, []);
            groups.get(key).push(word);
          }
          return [...groups.values()];
        }
        """,
    "running-median": """
        let runningMedian = function (nums) {
          const sorted = [];
          const medians = [];
          for (const num of nums) {
            let lo = 0;
            let hi = sorted.length;
            while (lo < hi) {
              const mid = (lo + hi) >> 1;
              if (sorted[mid] < num) lo = mid + 1;
              else hi = mid;
            }
            sorted.splice(lo, 0, num);
            const n = sorted.length;
            medians.push(n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2);
          }
          return medians;
        };
        """,
    "coin-change": """
        class Solution {
          coinChange(coins, amount) {
            const fewest = new Array(amount + 1).fill(Infinity);
            fewest[0] = 0;
            for (let value = 1; value <= amount; value++) {
              for (const coin of coins) {
                if (coin <= value) fewest[value] = Math.min(fewest[value], fewest[value - coin] + 1);
              }
            }
            return fewest[amount] === Infinity ? -1 : fewest[amount];
          }
        }
        """,
    "daily-temperatures": """
        async function dailyTemperatures(temperatures) {
          const answer = new Array(temperatures.length).fill(0);
          const waiting = []; // indices of days still waiting for a warmer one
          for (let i = 0; i < temperatures.length; i++) {
            while (waiting.length && temperatures[waiting.at(-1)] < temperatures[i]) {
              const day = waiting.pop();
              answer[day] = i - day;
            }
            waiting.push(i);
          }
          await null;
          return answer;
        }
        """,
}
BANK = load_question_bank()


def question(question_id: str) -> CodingQuestion:
    found = BANK.get(question_id)
    assert isinstance(found, CodingQuestion)
    return found


async def run_question(runner: CodeRunner, q: CodingQuestion, code: str) -> RunResult:
    return await runner.run_tests(
        js(code),
        q.function_name,
        q.all_tests,
        language="js",
        compare=q.compare,
        tolerance=q.tolerance,
    )


async def test_languages_names_and_the_host_without_node(monkeypatch: pytest.MonkeyPatch) -> None:
    assert supported_languages() == ("python", "javascript")
    assert camel_case("two_sum") == "twoSum"
    assert camel_case("length_of_longest_substring") == "lengthOfLongestSubstring"
    assert camel_case("add") == "add" and camel_case("_private_name") == "_privateName"
    assert function_names("two_sum", "javascript") == ("two_sum", "twoSum")
    assert function_names("add", "javascript") == ("add",)
    with pytest.raises(ValueError, match="unknown language 'ruby'"):
        await run_tests("", "add", ADD_TESTS, language="ruby")
    with pytest.raises(ValueError, match="not a JavaScript identifier"):
        await run_tests("", "class", ADD_TESTS, language="js")
    with pytest.raises(ValueError, match="not a JavaScript identifier"):
        await run_tests("", "two-sum", ADD_TESTS, language="javascript")
    # A host without node: JavaScript is not offered, and a run says why, cleanly.
    monkeypatch.setenv("PATH", "")
    assert supported_languages() == ("python",)
    result = await run("function add(a, b) { return a + b; }")
    assert result.status == "error"
    assert result.error == "JavaScript is not available on this server (no node)"
    assert all(
        t.message == "not run: JavaScript is not available on this server" for t in result.tests
    )


async def test_reference_solutions_pass_every_test_and_wrong_ones_fail() -> None:
    runner = CodeRunner(max_concurrent=4)
    questions = [question(question_id) for question_id in REFERENCES]
    wrong = {
        "starter": "function {name}(...args) {{}}",
        "constant": "const {name} = () => {expected};",
    }
    runs = [run_question(runner, q, REFERENCES[q.id]) for q in questions]
    for q in questions:
        for template in wrong.values():
            name = camel_case(q.function_name)
            runs.append(run_question(runner, q, template.format(name=name, expected="[0, 1]")))
    results = await asyncio.gather(*runs)
    references, wrongs = results[: len(questions)], results[len(questions) :]
    for q, result in zip(questions, references, strict=True):
        assert result.status == "passed", (q.id, [t for t in result.tests if not t.passed])
        assert len(result.tests) == len(q.all_tests) >= 8
    for result in wrongs:
        assert result.status == "failed", result
        assert not all(t.passed for t in result.tests)


@pytest.mark.parametrize(
    "code",
    [
        "function addNumbers(a, b) { return a + b; }",
        "function add_numbers(a, b) { return a + b; }",
        "const addNumbers = (a, b) => a + b;",
        "let add_numbers = function (a, b) { return a + b; };",
        "var addNumbers = (a, b) => a + b;",
        "module.exports = { addNumbers: (a, b) => a + b };",
        "exports.add_numbers = (a, b) => a + b;",
        "module.exports.addNumbers = function (a, b) { return a + b; };",
        "class Solution {\n  addNumbers(a, b) { return a + b; }\n}",
    ],
    ids=[
        "camel-function",
        "snake-function",
        "const-arrow",
        "let-function",
        "var",
        "module-exports",
        "exports-member",
        "module-exports-member",
        "solution-class",
    ],
)
async def test_the_function_is_found_in_snake_or_camel_case_however_defined(code: str) -> None:
    result = await run(code, function_name="add_numbers")
    assert result.status == "passed", result


async def test_a_wrong_answer_and_exceptions_fail_their_tests_with_clear_messages() -> None:
    result = await run("function add(a, b) {\n  return a - b;\n}")
    assert result.status == "failed"
    assert result.tests[0].message == "expected 3, got -1"
    assert result.tests[1].passed
    code = """
        function add(a, b) {
          if (a === 0) return null.x;
          if (a < 0) throw "plain string";
          return require("no-such-module");
        }
        """
    result = await run(code)
    assert result.status == "failed"
    messages = [t.message or "" for t in result.tests]
    assert messages[0].startswith("Error: Cannot find module 'no-such-module' (line 4)")
    assert messages[1] == "TypeError: Cannot read properties of null (reading 'x') (line 2)"
    assert messages[2] == "Uncaught 'plain string'"
    for message in messages:
        assert "mentara-run-" not in message and "Require stack" not in message
        assert "/usr/" not in message and "node:internal" not in message


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (
            "function add(a, b) {\n  return a +;\n}",
            "SyntaxError: Unexpected token ';' (line 2)",
        ),
        ("throw new RangeError('at load');\nfunction add() {}", "RangeError: at load (line 1)"),
        (
            "function subtract(a, b) { return a - b; }",
            "ReferenceError: function 'add' is not defined",
        ),
        ("const add = 42;", "TypeError: 'add' is not a function"),
        ("function add() { process.exit(3); }", "the program exited before all tests ran (code 3)"),
        (
            "import fs from 'fs';\nfunction add() {}",
            "SyntaxError: Cannot use import statement outside a module (line 1)",
        ),
    ],
    ids=["syntax", "throw-at-load", "missing", "not-callable", "exit", "esm-import"],
)
async def test_code_that_cannot_run_is_an_error(code: str, error: str) -> None:
    result = await run(code, limits=FAST)
    assert result.status == "error"
    assert result.error == error
    assert all(t.message and t.message.startswith("not run") for t in result.tests)


async def test_a_node_global_is_not_taken_for_the_candidates_function() -> None:
    # structured_clone -> structuredClone, which Node defines: it must not be called.
    result = await run("function other() {}", function_name="structured_clone", limits=FAST)
    assert result.error == (
        "ReferenceError: function 'structured_clone' (nor 'structuredClone') is not defined"
    )


async def test_async_functions_are_awaited() -> None:
    code = """
        async function add(a, b) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (a < 0) throw new TypeError("negative");
          return a + b;
        }
        """
    result = await run(code)
    assert [t.passed for t in result.tests] == [True, True, False]
    assert result.tests[2].message == "TypeError: negative (line 3)"
    code = """
        function add(a, b) {
          if (a === 1) return new Promise(() => {}); // never settles, nothing left to run
          if (a === 0) {
            setTimeout(() => { throw new RangeError("from a timer"); }, 1);
            return new Promise((resolve) => setTimeout(resolve, 1000));
          }
          return Promise.resolve(a + b);
        }
        """
    result = await run(code)
    assert result.status == "failed"
    assert result.tests[0].message == (
        "the returned Promise never settled (nothing was left to wait for)"
    )
    assert result.tests[1].message == "RangeError: from a timer (line 4)"
    assert result.tests[2].passed


async def test_a_promise_that_waits_too_long_hits_the_wall_clock() -> None:
    limits = RunLimits(cpu_seconds=5, wall_seconds=1.0)
    started = time.monotonic()
    result = await run("const add = () => new Promise((r) => setTimeout(r, 60000));", limits=limits)
    assert result.status == "timeout"
    assert 1.0 <= time.monotonic() - started < 2.5


async def test_return_values_become_json_or_fail_clearly() -> None:
    cases: list[tuple[str, Any]] = [
        ("new Set([3, 1, 2])", [1, 2, 3]),
        ("new Map([['a', 1]])", {"a": 1}),
        ("123456789012345678901234567890n", 123456789012345678901234567890),
        ("new Int32Array([1, -2])", [1, -2]),
        ("({ a: [1, { b: null }], c: 'é' })", {"a": [1, {"b": None}], "c": "é"}),
        ("-0", 0),
        ("2.5", 2.5),
    ]
    failing = [
        ("undefined", "undefined"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
        ("[1, undefined]", "[ 1, undefined ]"),
        ("new (class Point { constructor() { this.x = 1; } })()", "Point { x: 1 }"),
        ("() => 1", "[Function (anonymous)]"),
    ]
    values = [value for value, _ in cases + failing]
    code = "function add(i) {\n  return [" + ", ".join(f"() => {v}" for v in values) + "][i]();\n}"
    tests = [TestCase(name=f"t{i}", args=(i,), expected=e) for i, (_, e) in enumerate(cases)]
    tests += [
        TestCase(name=v, args=(len(cases) + i,), expected=1) for i, (v, _) in enumerate(failing)
    ]
    result = await run(code, tests)
    assert [t.passed for t in result.tests[: len(cases)]] == [True] * len(cases), result.tests
    for outcome, (_, shown) in zip(result.tests[len(cases) :], failing, strict=True):
        assert outcome.message == f"expected 1, got {shown} (not a JSON value)"


async def test_output_is_captured_in_order_and_the_tail_is_bounded() -> None:
    code = """
        function add(a, b) {
          console.log("log", a);
          process.stdout.write("write " + b + "\\n");
          console.error("error", a + b);
          return a + b;
        }
        """
    result = await run(code, ADD_TESTS[:1])
    assert result.status == "passed"
    assert result.stdout_tail == "log 1\nwrite 2\nerror 3\n"
    code = """
        function add(a, b) {
          for (let i = 0; i < 20000; i++) console.log("line", i);
          return a + b;
        }
        """
    result = await run(code, ADD_TESTS[:1])
    assert result.status == "passed"
    assert len(result.stdout_tail) == 2000
    assert result.stdout_tail.endswith("line 19999\n")


@pytest.mark.parametrize(
    "code",
    [
        "function add() { while (true) console.log('x'.repeat(10000)); }",
        "function add() { for (;;) process.stdout.write('y'.repeat(1 << 16)); }",
    ],
    ids=["console-log", "stdout-write"],
)
async def test_printing_megabytes_is_stopped_at_the_output_limit(code: str) -> None:
    started = time.monotonic()
    result = await run(code, limits=FAST)
    assert result.status == "error"
    assert result.error == f"output limit exceeded ({FAST.output_bytes} bytes)"
    assert len(result.stdout_tail) <= FAST.stdout_tail_chars
    assert time.monotonic() - started < FAST.wall_seconds
    await host_still_works()


async def test_an_infinite_loop_times_out_within_the_cpu_bound() -> None:
    started = time.monotonic()
    result = await run(
        "function add() {\n  console.log('spinning');\n  for (;;) {}\n}", limits=FAST
    )
    assert result.status == "timeout"
    assert result.error == "time limit exceeded"
    assert result.tests[0].message == "time limit exceeded"
    assert result.stdout_tail == "spinning\n"
    assert time.monotonic() - started < FAST.wall_seconds + 1.5
    await host_still_works()


async def test_deep_recursion_is_a_range_error_not_a_crash() -> None:
    result = await run("function add(a, b) {\n  return add(a, b) + 1;\n}", ADD_TESTS[:1])
    assert result.status == "failed"
    assert result.tests[0].message == "RangeError: Maximum call stack size exceeded (line 2)"


@pytest.mark.parametrize(
    ("code", "statuses"),
    [
        (
            "function add() {\n  const hog = [];\n  for (;;) hog.push(new Array(1e5).fill(1));\n}",
            ("error", "timeout"),
        ),
        (
            "function add() {\n  const hog = [];\n  for (;;) hog.push(Buffer.alloc(1 << 20, 1));\n}",
            ("error", "timeout", "failed"),
        ),
    ],
    ids=["growing-array", "growing-buffers"],
)
async def test_a_memory_hog_is_stopped_and_the_host_is_fine(
    code: str, statuses: tuple[str, ...]
) -> None:
    result = await run(code, limits=FAST)
    assert result.status in statuses, result
    assert not any(t.passed for t in result.tests)
    if result.status == "error":
        assert result.error == "memory limit exceeded (JavaScript heap out of memory)"
    if result.status == "failed":  # memory outside the heap: the allocation itself fails
        assert result.tests[0].message is not None
        assert result.tests[0].message.startswith("RangeError")
    await host_still_works()


async def test_child_processes_are_bounded_and_a_fork_bomb_is_contained() -> None:
    support = await detect_sandbox_support()
    code = """
        const { spawn } = require("child_process");

        function add(a, b) {
          let started = 0;
          for (let i = 0; i < 20; i++) {
            const child = spawn("sleep", ["30"], { stdio: "ignore", detached: true });
            child.on("error", () => {});
            if (child.pid) started++;
          }
          return started;
        }
        """
    result = await run(code, [TestCase(name="spawn", args=(0, 0), expected=-1)], limits=FAST)
    message = result.tests[0].message or ""
    if support.isolated or support.as_root:
        # The process limit refused the rest; the sleepers were killed after the run.
        started = int(message.removeprefix("expected -1, got "))
        assert 1 <= started <= FAST.max_processes, message
    assert sandbox_processes() == []
    bomb = """
        const { execSync } = require("child_process");

        function add(a, b) {
          return execSync("f() { f | f & }; f", { encoding: "utf8" });
        }
        """
    started_at = time.monotonic()
    result = await run(bomb, limits=FAST)
    assert result.status in ("failed", "error", "timeout")
    assert time.monotonic() - started_at < FAST.wall_seconds + 1.5
    if (support.isolated or support.as_root) and result.status == "failed":
        # The shell reports the fork the process limit refused ("Cannot fork" from dash,
        # "fork: ... Resource temporarily unavailable" from bash), or execSync's own spawn.
        told = result.stdout_tail.lower() + (result.tests[0].message or "")
        assert "fork" in told or "EAGAIN" in told, result
    await host_still_works()


async def test_the_environment_is_empty_and_the_server_out_of_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MENTARA_JWT_SECRET", "host-secret-value")
    support = await detect_sandbox_support()
    code = f"""
        const fs = require("fs");

        function add(a, b) {{
          const attempts = [
            () => fs.readFileSync("/proc/{os.getpid()}/environ"),
            () => fs.writeFileSync("{os.getcwd()}/mentara-js-escape", "x"),
            () => fs.writeFileSync("/etc/mentara-js-escape", "x"),
            () => process.kill({os.getpid()}, 0),
          ];
          const outcomes = attempts.map((attempt) => {{
            try {{
              attempt();
              return "allowed";
            }} catch (error) {{
              // Not found: a path under a folder the sandbox replaced with a private one.
              return ["EACCES", "EPERM", "ENOENT", "ESRCH"].includes(error.code) ? "denied" : error.code;
            }}
          }});
          fs.writeFileSync("inside.txt", "the working folder is writable");
          return [Object.keys(process.env), JSON.stringify(process.env).includes("host-secret"), outcomes,
                  fs.readFileSync("inside.txt", "utf8").length];
        }}
        """
    denied = ["denied"] * 4
    tests = [TestCase(name="reach", args=(0, 0), expected=[[], False, denied, 30])]
    result = await run(code, tests)
    if support.isolated or support.as_root:
        assert result.status == "passed", result.tests
    else:
        assert os.geteuid() != 0 and "drop" not in support.detail.split(";")[0]
        assert result.tests[0].message is not None
        assert (
            result.tests[0].message.startswith("expected")
            and "[[], false, [" in result.tests[0].message
        )
    assert gone("mentara-js-escape") and gone("/etc/mentara-js-escape")


async def test_network_is_blocked_when_the_host_allows_it() -> None:
    support = await detect_sandbox_support()
    if not support.isolated:
        assert "net" not in support.detail.split(";")[0], support
        return
    accepted = 0

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code = """
            const net = require("net");
            const http = require("http");

            async function add(port) {
              const viaNet = new Promise((resolve) => {
                const socket = net.connect(port, "127.0.0.1", () => resolve("connected"));
                socket.on("error", () => resolve("blocked"));
              });
              const viaHttp = new Promise((resolve) => {
                http.get(`http://127.0.0.1:${port}/`, () => resolve("connected"))
                  .on("error", () => resolve("blocked"));
              });
              return Promise.all([viaNet, viaHttp]);
            }
            """
        tests = [TestCase(name="loopback", args=(port,), expected=["blocked", "blocked"])]
        result = await run(code, tests)
        assert result.status == "passed", result.tests
        assert accepted == 0
        _, writer = await asyncio.open_connection("127.0.0.1", port)  # open from the host
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert accepted == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_forged_results_cannot_make_a_wrong_solution_pass() -> None:
    code = """
        const fs = require("fs");

        function add(a, b) {
          const forged = [0, 1, 2]
            .map((i) => JSON.stringify({ i, ok: true, value: a + b, passed: true }))
            .concat([JSON.stringify({ done: true })])
            .join("\\n") + "\\n";
          console.log(forged);
          console.error(forged);
          for (const fd of [1, 2, 3]) fs.writeSync(fd, forged); // 2 and 3: the results pipe
          return -1;
        }
        """
    # Expected values the candidate cannot know: they never enter the sandbox.
    tests = [TestCase(name=f"hidden_{i}", args=(i, i), expected=1000 + i) for i in range(3)]
    result = await run(code, tests)
    assert result.status == "failed"
    assert not any(t.passed for t in result.tests)


async def test_code_generation_from_strings_is_off() -> None:
    code = """
        function add(a, b) {
          const tries = [() => eval("1 + 1"), () => new Function("return 1")()];
          return tries.map((attempt) => {
            try {
              return attempt();
            } catch (error) {
              return error.name;
            }
          });
        }
        """
    result = await run(code, [TestCase(name="eval", args=(0, 0), expected=["EvalError"] * 2)])
    assert result.status == "passed", result.tests


async def test_cancelling_a_run_kills_node_and_cleans_up() -> None:
    code = "function add() {\n  for (;;) {}\n}"
    task = asyncio.create_task(run(code, limits=RunLimits(cpu_seconds=10, wall_seconds=10)))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox_processes() == []
    await host_still_works()


async def test_the_fallback_without_namespaces_still_runs_node_within_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MENTARA_JWT_SECRET", "host-secret-value")
    # What a host without namespaces gets: as root, a uid switch only; otherwise nothing
    # (and then the process limit is counted on top of the server user's own threads).
    runner = CodeRunner(
        support=SandboxSupport.without_isolation("forced for the test", unsafe=True)
    )
    code = "const add = () => [Object.keys(process.env), process.getuid() === 0];"
    tests = [TestCase(name="env", args=(0, 0), expected=[[], False])]
    result = await runner.run_tests(code, "add", tests, language="js")
    assert result.status == "passed", result.tests
    spin = "function add() {\n  for (;;) {}\n}"
    result = await runner.run_tests(spin, "add", ADD_TESTS, language="js", limits=FAST)
    assert result.status == "timeout"
    await host_still_works()
