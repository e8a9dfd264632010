// detops: the command line. Parses arguments and calls the library.

#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "cli/output.h"
#include "detops_git_commit.h"

namespace detops::cli {

Result<std::unique_ptr<Workspace>> OpenWorkspace(const Globals& g) {
  return Workspace::Open({g.workspace});
}

std::string Actor() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return "uid " + std::to_string(::getuid());
}

void AddPrecisionOption(CLI::App* cmd, std::string& precision, const std::string& bf16_does) {
  cmd->add_option("--precision", precision,
                  "fp32 | bf16 (" + bf16_does +
                      "; needs AVX512-BF16) | auto (bf16 where the CPU "
                      "has it)")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
}

}  // namespace detops::cli

int main(int argc, char** argv) {
  using namespace detops::cli;
  CLI::App app{
      "detops: datasets, training, evaluation, registry, serving and monitoring for damage "
      "detectors, in one binary.\n\nExit codes: 0 ok, 1 runtime error, 2 bad arguments or "
      "input, 3 not found, 4 validation failed."};
  app.set_version_flag("--version",
                       std::string("detops ") + DETOPS_VERSION + " (" + DETOPS_GIT_COMMIT + ")");
  app.require_subcommand(1);
  Globals g;
  const char* env = std::getenv("DETOPS_WORKSPACE");
  g.workspace = env && *env ? env : "detops-ws";
  app.add_option("-w,--workspace", g.workspace,
                 "workspace folder (default: $DETOPS_WORKSPACE, else ./detops-ws)")
      ->capture_default_str();
  AddDataCommands(app, g);
  AddRunsCommands(app, g);
  AddSynthCommand(app, g);
  AddModelCommands(app, g);
  AddRegistryCommands(app, g);
  AddServeCommands(app, g);
  AddTokenCommands(app, g);
  AddFeedbackCommands(app, g);
  AddWorkspaceCommands(app, g);
  AddAlertCommands(app, g);
  AddMonitorCommands(app, g);
  AddPipelineCommands(app, g);
  AddControllerCommand(app, g);
  AddRolloutCommands(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitBadInput;
  } catch (const std::exception& e) {
    // The last resort: libraries' exceptions are converted where they enter
    // our code (core/status.h); one that got through is a bug to report,
    // not a reason to abort with a core dump.
    std::fprintf(stderr, "error: internal: %s\n(this is a bug in detops; please report it)\n",
                 e.what());
    return kExitError;
  } catch (...) {
    std::fprintf(stderr, "error: internal: an unknown exception\n(this is a bug in detops)\n");
    return kExitError;
  }
  return g.exit_code;
}
