#pragma once
// Registration of the `detops` subcommands. Each command parses its flags
// into an options struct, calls one library function and maps the result to
// output and an exit code.

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "store/store.h"

namespace detops::cli {

struct Globals {
  std::string workspace;  // --workspace, $DETOPS_WORKSPACE, ./detops-ws
  int exit_code = 0;      // set by the command that ran
};

Result<std::unique_ptr<Workspace>> OpenWorkspace(const Globals& g);

// Who runs the command, for audit entries and alert records: $USER, else
// the account name.
std::string Actor();

// --precision fp32|bf16|auto (ResolvePrecision), for the commands that run
// the network; `bf16_does` says what bf16 means for this command.
void AddPrecisionOption(CLI::App* cmd, std::string& precision, const std::string& bf16_does);

void AddDataCommands(CLI::App& app, Globals& g);
void AddRunsCommands(CLI::App& app, Globals& g);
void AddSynthCommand(CLI::App& app, Globals& g);
void AddModelCommands(CLI::App& app, Globals& g);
void AddRegistryCommands(CLI::App& app, Globals& g);
void AddServeCommands(CLI::App& app, Globals& g);
void AddTokenCommands(CLI::App& app, Globals& g);
void AddFeedbackCommands(CLI::App& app, Globals& g);
void AddWorkspaceCommands(CLI::App& app, Globals& g);
void AddAlertCommands(CLI::App& app, Globals& g);
void AddMonitorCommands(CLI::App& app, Globals& g);
void AddPipelineCommands(CLI::App& app, Globals& g);  // and triggers
void AddControllerCommand(CLI::App& app, Globals& g);
void AddRolloutCommands(CLI::App& app, Globals& g);

}  // namespace detops::cli
