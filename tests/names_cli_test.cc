// Dataset and model names follow one rule (core/names.h): a model registered
// from a run is named after the run's dataset by default, so every name a
// dataset may take must be a valid model name. Trains tiny models (a few
// seconds each).

#include <gtest/gtest.h>

#include "core/core.h"
#include "store/store.h"
#include "testing/testutil.h"

namespace detops {
namespace {

using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

class NamesCli : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& args) {
    return RunCommand(testing::DetopsBin() + " --workspace " + (dir_ / "ws").string() + " " + args);
  }
  TempDir dir_;
};

TEST_F(NamesCli, ARunRegistersUnderItsDatasetsNameWhateverValidNameItHas) {
  const std::string images = (dir_ / "cars").string();
  ASSERT_EQ(
      Run("synth " + images + " --kind car --n 30 --seed 7 --width 640 --height 480").exit_code, 0);
  // The edges of the rule: one digit; every allowed punctuation; 64 characters.
  const std::string names[] = {"7", "A.b-c_d", "z" + std::string(62, '_') + "9"};
  for (size_t i = 0; i < std::size(names); ++i) {
    const std::string& name = names[i];
    CommandResult import = Run("data import " + name + " " + images);
    ASSERT_EQ(import.exit_code, 0) << import.out;
    const std::string run = "r" + std::to_string(i);
    CommandResult train = Run("train " + name + " --name " + run +
                              " --epochs 1 --imgsz 64 --batch 8 --threads 2 --quiet --model n");
    ASSERT_EQ(train.exit_code, 0) << train.out;
    CommandResult reg = Run("models register " + run);
    ASSERT_EQ(reg.exit_code, 0) << name << ": " << reg.out;
    CommandResult show = Run("models ls --json");
    ASSERT_EQ(show.exit_code, 0) << show.out;
    EXPECT_NE(show.out.find("\"ref\": \"" + name + "@1\""), std::string::npos) << show.out;
  }
}

TEST_F(NamesCli, ADatasetNamedBeforeTheSharedRuleStaysReadableButNoNewOneIsCreated) {
  const std::string images = (dir_ / "cars").string();
  ASSERT_EQ(Run("synth " + images + " --kind car --n 12 --seed 3").exit_code, 0);
  ASSERT_EQ(Run("data import cars " + images).exit_code, 0);
  {  // The old dataset rule allowed a leading '_': make such a workspace.
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ASSERT_TRUE((*ws)->db().Exec("UPDATE datasets SET name = '_cars' WHERE name = 'cars'").ok());
  }
  CommandResult show = Run("data show _cars@1");
  EXPECT_EQ(show.exit_code, 0) << show.out;
  CommandResult ls = Run("data ls");
  EXPECT_NE(ls.out.find("_cars"), std::string::npos) << ls.out;
  CommandResult created = Run("data import _new " + images);
  EXPECT_EQ(created.exit_code, 2) << created.out;
  EXPECT_NE(created.out.find("dataset name '_new'"), std::string::npos) << created.out;
  // Names that were never allowed stay refused when read, too.
  CommandResult path = Run("data show ../cars");
  EXPECT_EQ(path.exit_code, 2) << path.out;
}

}  // namespace
}  // namespace detops
