// Class maps: parsing, renumbering, refusals.

#include "data/class_map.h"

#include <gtest/gtest.h>

namespace detops {
namespace {

Manifest ThreeClasses() {
  Manifest m;
  m.classes = {"cizik", "gocuk", "pas"};
  ImageEntry e;
  e.name = "a.jpg";
  e.labelled = true;
  e.boxes = {{0, 0.1, 0.1, 0.2, 0.2},
             {1, 0.2, 0.2, 0.3, 0.3},
             {2, 0.3, 0.3, 0.4, 0.4},
             {7, 0.4, 0.4, 0.5, 0.5}};
  m.images.push_back(e);
  return m;
}

std::vector<int> Ids(const Manifest& m) {
  std::vector<int> out;
  for (const Box& b : m.images[0].boxes) out.push_back(b.class_id);
  return out;
}

TEST(ClassMap, ParsesRenamesAndDrops) {
  auto m = ParseClassMap(" cizik=scratch, gocuk = dent,a=x,b=x", "c1,c2");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->rename.size(), 4u);
  EXPECT_EQ(m->rename[1], (std::pair<std::string, std::string>{"gocuk", "dent"}));
  EXPECT_EQ(m->drop, (std::vector<std::string>{"c1", "c2"}));
}

TEST(ClassMap, RefusesMalformedEntriesNamingThem) {
  auto no_eq = ParseClassRenames("cizik=scratch,gocuk");
  ASSERT_FALSE(no_eq.ok());
  EXPECT_NE(no_eq.status().message().find("entry 'gocuk' is not FROM=TO"), std::string::npos)
      << no_eq.status().message();
  auto empty = ParseClassRenames("=dent");
  EXPECT_NE(empty.status().message().find("empty class name"), std::string::npos);
  auto twice = ParseClassRenames("a=x,a=y");
  EXPECT_NE(twice.status().message().find("'a' is mapped twice"), std::string::npos);
  auto both = ParseClassMap("a=x", "a");
  EXPECT_NE(both.status().message().find("both mapped and dropped"), std::string::npos);
  EXPECT_FALSE(ParseClassList("a,,b").ok());
}

TEST(ClassMap, RenamesMergesAndDropsWithRenumberedBoxes) {
  Manifest m = ThreeClasses();
  BoxOrigins origins;
  origins.images.push_back({"labels/a.txt", {1, 2, 3, 4}, -1, 0, 0});
  ClassMap map{{{"cizik", "damage"}, {"pas", "damage"}}, {"gocuk"}};
  auto c = ApplyClassMap(map, "cars@1", m, &origins);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(m.classes, (std::vector<std::string>{"damage"}));
  // cizik and pas -> damage (0); gocuk dropped; unknown id 7 stays unknown.
  EXPECT_EQ(Ids(m), (std::vector<int>{0, 0, 5}));
  EXPECT_EQ(origins.images[0].boxes, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(c->boxes_renamed, 2);
  EXPECT_EQ(c->boxes_dropped, 1);
  EXPECT_EQ(c->classes_before, 3);
  EXPECT_EQ(c->classes_after, 1);
}

TEST(ClassMap, MergesIntoAnExistingClassInItsPlace) {
  Manifest m = ThreeClasses();
  auto c = ApplyClassMap({{{"cizik", "pas"}}, {}}, "cars@1", m);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(m.classes, (std::vector<std::string>{"pas", "gocuk"}));
  EXPECT_EQ(Ids(m), (std::vector<int>{0, 1, 0, 6}));
}

TEST(ClassMap, AnUnknownClassIsRefusedNamingItAndTheClasses) {
  Manifest m = ThreeClasses();
  auto mapped = ApplyClassMap({{{"rust", "dent"}}, {}}, "cars@2", m);
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(mapped.status().message().find(
                "mapped class 'rust' is not a class of cars@2 (its classes: cizik, gocuk, pas)"),
            std::string::npos)
      << mapped.status().message();
  auto dropped = ApplyClassMap({{}, {"glass"}}, "cars@2", m);
  EXPECT_NE(dropped.status().message().find("dropped class 'glass'"), std::string::npos);
  EXPECT_EQ(m, ThreeClasses());  // untouched
}

}  // namespace
}  // namespace detops
