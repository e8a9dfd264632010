// detops init | gc

#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"

namespace detops::cli {

void AddWorkspaceCommands(CLI::App& app, Globals& g) {
  auto* init = app.add_subcommand("init", "Create the workspace folder (other commands do too)");
  init->callback([&g] {
    auto ws = OpenWorkspace(g);
    if (!ws.ok()) {
      g.exit_code = Fail(ws.status());
      return;
    }
    std::cout << "workspace " << (*ws)->root().string() << " (schema "
              << (*ws)->db().SchemaVersion() << ")\n";
  });
  auto* gc = app.add_subcommand(
      "gc", "Remove blobs nothing refers to (left by an interrupted import); run it alone");
  gc->callback([&g] {
    auto ws = OpenWorkspace(g);
    if (!ws.ok()) {
      g.exit_code = Fail(ws.status());
      return;
    }
    auto n = (*ws)->CollectGarbage();
    if (!n.ok()) {
      g.exit_code = Fail(n.status());
      return;
    }
    std::cout << "removed " << *n << " unreferenced blob(s)\n";
  });
}

}  // namespace detops::cli
