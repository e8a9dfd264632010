// The shell step: a command of the user's, its output in the step log.

#include <sys/wait.h>

#include <cstdio>

#include "orchestrate/steps_internal.h"

namespace detops {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

}  // namespace

StepType ShellStep() {
  StepType t;
  t.name = "shell";
  t.summary =
      "runs a command with /bin/sh (DETOPS_WORKSPACE and DETOPS_PIPELINE_RUN set); "
      "a non-zero exit fails the step";
  t.required = {"run"};
  t.run = [](StepContext& c) -> Result<Json> {
    ASSIGN_OR_RETURN(std::string cmd, c.Require("run"));
    const std::string line = "DETOPS_WORKSPACE=" + Quote(c.ws.root().string()) +
                             " DETOPS_PIPELINE_RUN=" + std::to_string(c.pipeline_run) +
                             " /bin/sh -c " + Quote(cmd) + " 2>&1";
    FILE* pipe = ::popen(line.c_str(), "r");
    if (!pipe) return Status::IOError("step " + c.step_id + ": cannot start /bin/sh");
    std::string tail, current;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) {
      for (size_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          c.log("| " + current);
          tail = current;
          current.clear();
        } else {
          current += buf[i];
        }
      }
    }
    if (!current.empty()) {
      c.log("| " + current);
      tail = current;
    }
    int status = ::pclose(pipe);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0) {
      return Status::Internal("command exited with " + std::to_string(code) +
                              (tail.empty() ? "" : ": " + tail));
    }
    return Json{{"exit_code", "0"}, {"last_line", tail}};
  };
  return t;
}

}  // namespace detops
