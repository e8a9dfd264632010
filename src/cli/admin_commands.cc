// detops tokens create | ls | revoke; detops feedback ls | export

#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "monitor/monitor.h"
#include "pipeline/pipeline.h"
#include "serve/tokens.h"

namespace detops::cli {
namespace {

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }

// ---- tokens ----

struct CreateArgs {
  std::string role;
  std::string name;
  bool json = false;
};

int CreateTokenCmd(Globals& g, const CreateArgs& a) {
  std::optional<TokenRole> role = ParseTokenRole(a.role);
  if (!role) return Fail(Status::InvalidInput("--role must be reader, writer or admin"));
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto t = CreateToken(**opened, *role, a.name);
  if (!t.ok()) return Fail(t.status());
  if (a.json) {
    Json j = ApiTokenToJson(t->token);
    j["secret"] = t->secret;
    PrintJson(j);
  } else {
    std::cout << "created " << TokenRoleName(*role) << " token " << t->token.id
              << (a.name.empty() ? "" : " (" + a.name + ")") << ":\n\n  " << t->secret << "\n\n";
  }
  std::fprintf(stderr,
               "Copy it now: only its hash is stored, it cannot be shown again. Clients send "
               "'Authorization: Bearer <token>'; revoke with: detops tokens revoke %s\n",
               t->token.id.c_str());
  return kExitOk;
}

int ListTokensCmd(Globals& g, bool json) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto tokens = ListTokens(**opened);
  if (!tokens.ok()) return Fail(tokens.status());
  if (json) {
    Json j = Json::array();
    for (const ApiToken& t : *tokens) j.push_back(ApiTokenToJson(t));
    PrintJson(j);
    return kExitOk;
  }
  Table t({"ID", "ROLE", "NAME", "CREATED", "REVOKED"});
  for (const ApiToken& k : *tokens) {
    t.Add({k.id, TokenRoleName(k.role), Dash(k.name), k.created_at.substr(0, 19),
           k.revoked_at.empty() ? "-" : k.revoked_at.substr(0, 19)});
  }
  std::cout << t.Render();
  if (tokens->empty()) std::cout << "no tokens yet: detops tokens create --role writer\n";
  return kExitOk;
}

int RevokeTokenCmd(Globals& g, const std::string& id) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  Status s = RevokeToken(**opened, id);
  if (!s.ok()) return Fail(s);
  std::cout << "revoked token " << id
            << " (servers that verified it in the last few seconds may accept it briefly)\n";
  return kExitOk;
}

// ---- feedback ----

struct FeedbackListArgs {
  std::string model;
  bool unexported = false;
  bool json = false;
};

int ListFeedbackCmd(Globals& g, const FeedbackListArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto list = ListFeedback(**opened, a.model, a.unexported);
  if (!list.ok()) return Fail(list.status());
  if (a.json) {
    Json j = Json::array();
    for (const FeedbackRecord& f : *list) j.push_back(FeedbackToJson(f));
    PrintJson(j);
    return kExitOk;
  }
  Table t({"ID", "PREDICTION", "AT", "ACTOR", "BOXES", "EXPORTED TO"});
  for (const FeedbackRecord& f : *list) {
    t.Add({std::to_string(f.id), f.prediction_id, f.at.substr(0, 19), Dash(f.actor),
           std::to_string(f.boxes.size()), Dash(f.exported_to)});
  }
  std::cout << t.Render();
  if (list->empty()) std::cout << "no feedback for " << a.model << "\n";
  return kExitOk;
}

struct ExportArgs {
  FeedbackExportOptions o;
  bool json = false;
};

int ExportFeedbackCmd(Globals& g, const ExportArgs& a) {
  auto opened = OpenWorkspace(g);
  if (!opened.ok()) return Fail(opened.status());
  auto r = RunFeedbackExportJob(**opened, a.o);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    Json j = {{"created", r->created},
              {"images_added", r->images_added},
              {"boxes", r->boxes},
              {"skipped_no_image", r->skipped_no_image}};
    if (r->created || r->images_added > 0) j["version"] = r->version.Ref();
    PrintJson(j);
    return kExitOk;
  }
  if (r->created) {
    std::cout << "created " << r->version.Ref() << " (parent " << r->version.dataset << "@"
              << r->version.parent_version << "): " << r->images_added << " feedback images, "
              << r->boxes << " boxes, in " << a.o.split << "\n";
  } else if (r->images_added > 0) {
    std::cout << "the feedback is already in " << r->version.Ref() << "; no new version\n";
  } else {
    std::cout << "no new feedback to export for " << a.o.model << "\n";
  }
  if (r->skipped_no_image > 0) {
    std::cout
        << "skipped " << r->skipped_no_image
        << " feedback whose prediction kept no image (detops serve --keep-images keeps some)\n";
  }
  if (r->created) {
    std::cout << "next: detops data validate " << r->version.Ref() << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddTokenCommands(CLI::App& app, Globals& g) {
  auto* tokens = app.add_subcommand(
      "tokens", "API tokens for detops serve: writer for feedback, admin for promotion");
  tokens->require_subcommand(1);

  auto* create = tokens->add_subcommand(
      "create", "Make a token; its secret is printed once and only its hash is stored");
  auto ca = std::make_shared<CreateArgs>();
  create->add_option("--role", ca->role, "reader | writer | admin")
      ->required()
      ->check(CLI::IsMember({"reader", "writer", "admin"}));
  create->add_option("--name", ca->name, "what the token is for (shown in lists and audit)");
  create->add_flag("--json", ca->json, "print the token and its secret as JSON");
  create->callback([&g, ca] { g.exit_code = CreateTokenCmd(g, *ca); });

  auto* ls = tokens->add_subcommand("ls", "List tokens (never their secrets)");
  auto ls_json = std::make_shared<bool>(false);
  ls->add_flag("--json", *ls_json, "print JSON");
  ls->callback([&g, ls_json] { g.exit_code = ListTokensCmd(g, *ls_json); });

  auto* revoke = tokens->add_subcommand("revoke", "Revoke a token by its id");
  auto id = std::make_shared<std::string>();
  revoke->add_option("id", *id, "token id (detops tokens ls)")->required();
  revoke->callback([&g, id] { g.exit_code = RevokeTokenCmd(g, *id); });
}

void AddFeedbackCommands(CLI::App& app, Globals& g) {
  auto* feedback = app.add_subcommand(
      "feedback", "Corrected boxes sent back for served predictions, and their export to datasets");
  feedback->require_subcommand(1);

  auto* ls =
      feedback->add_subcommand("ls", "The latest feedback per prediction of a model, oldest first");
  auto la = std::make_shared<FeedbackListArgs>();
  ls->add_option("model", la->model, "model name")->required();
  ls->add_flag("--unexported", la->unexported, "only feedback not yet exported");
  ls->add_flag("--json", la->json, "print JSON");
  ls->callback([&g, la] { g.exit_code = ListFeedbackCmd(g, *la); });

  auto* ex = feedback->add_subcommand(
      "export",
      "Add the feedback images (kept images with the corrected boxes) to a new version of "
      "the model's dataset: the latest version plus one image per corrected prediction");
  auto ea = std::make_shared<ExportArgs>();
  ex->add_option("model", ea->o.model, "model name")->required();
  ex->add_option("--dataset", ea->o.dataset,
                 "dataset name (default: that of the model's production version, else of its "
                 "latest)");
  ex->add_option("--split", ea->o.split, "where the feedback images go")
      ->check(CLI::IsMember({"train", "val", "test"}))
      ->capture_default_str();
  ex->add_flag("--all", ea->o.include_exported, "export feedback already exported, again");
  ex->add_flag("--json", ea->json, "print the result as JSON");
  ex->callback([&g, ea] { g.exit_code = ExportFeedbackCmd(g, *ea); });
}

}  // namespace detops::cli
