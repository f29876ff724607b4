// Tasks (incremental/task.h, SPEC-continual.md §1): the reference splits of VOC and ADE20K with their
// paper aliases, the random 15-1 orders and ADE orders B/C exactly as §1.4-1.5 list them, channel
// order = concatenation of step lists, per-step class counts and old/new channel ranges, custom
// splits and class lists, and clear errors for bad names, steps and classes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>

#include "engine/error.h"
#include "incremental/task.h"

using namespace strata;
using namespace strata::incremental;

namespace {

std::vector<int> iota_vector(int first, int last) {
  std::vector<int> v(static_cast<size_t>(last - first + 1));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Every raw label 0..num_classes-1 is learned by exactly one step, and channel k at the last step is
// the k-th element of the concatenated step lists.
void check_covers_every_class(const Task& task) {
  INFO(task.describe());
  std::vector<int> all;
  for (int s = 0; s < task.num_steps(); ++s) all.insert(all.end(), task.classes(s).begin(), task.classes(s).end());
  std::vector<int> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == iota_vector(0, task.labels().num_classes() - 1));
  CHECK(task.channel_order(task.last_step()) == all);
  CHECK(task.classes(0).front() == 0);
  for (size_t k = 0; k < all.size(); ++k) CHECK(task.channel_of(task.last_step(), all[k]) == static_cast<int>(k));
}

// SPEC §1.4 and §1.5, row by row, in the class-list syntax ("step 0/step 1/...").
const std::pair<const char*, const char*> kVocRandomOrders[] = {
    {"15-5s_b", "0,12,9,20,7,15,8,14,16,5,19,4,1,13,2,11/17/3/6/18/10"},
    {"15-5s_c", "0,13,19,15,17,9,8,5,20,4,3,10,11,18,16,7/12/14/6/1/2"},
    {"15-5s_d", "0,15,3,2,12,14,18,20,16,11,1,19,8,10,7,17/6/5/13/9/4"},
    {"15-5s_e", "0,7,5,3,9,13,12,14,19,10,2,1,4,16,8,17/15/18/6/11/20"},
    {"15-5s_f", "0,7,13,5,11,9,2,15,12,14,3,20,1,16,4,18/8/6/10/19/17"},
    {"15-5s_g", "0,7,5,9,1,15,18,14,3,20,10,4,19,11,17,16/12/8/6/2/13"},
    {"15-5s_h", "0,12,9,19,6,4,10,5,18,14,15,16,3,8,7,11/13/2/20/17/1"},
    {"15-5s_i", "0,13,10,15,8,7,19,4,3,16,12,14,11,5,20,6/2/18/9/17/1"},
    {"15-5s_j", "0,1,14,9,5,2,15,8,20,6,16,18,7,11,10,19/3/4/17/12/13"},
    {"15-5s_k", "0,16,13,1,11,12,18,6,14,5,3,7,9,20,19,15/4/2/10/8/17"},
    {"15-5s_l", "0,10,7,6,19,16,8,17,1,14,4,9,3,15,11,12/2/18/20/13/5"},
    {"15-5s_m", "0,18,4,14,17,12,10,7,3,9,1,8,15,6,13,2/5/11/20/16/19"},
    {"15-5s_n", "0,5,4,13,18,14,10,19,15,7,9,3,2,8,16,20/1/12/11/6/17"},
    {"15-5s_o", "0,9,12,13,18,7,1,15,17,10,8,4,5,20,16,6/14/19/11/2/3"},
    {"15-5s_p", "0,9,12,13,18,2,11,15,17,10,8,4,5,20,16,6/14/19/1/7/3"},
    {"15-5s_q", "0,3,14,13,18,2,11,15,17,10,8,4,5,20,16,6/12/19/1/7/9"},
    {"15-5s_r", "0,3,14,13,1,2,11,15,17,7,8,4,5,9,16,19/12/6/18/10/20"},
    {"15-5s_s", "0,3,14,6,1,2,11,12,17,7,20,4,5,9,16,19/15/13/18/10/8"},
    {"15-5s_t", "0,3,15,13,1,2,11,18,17,7,20,8,5,9,16,19/14/6/12/10/4"},
    {"15-5s_u", "0,3,15,13,14,6,11,18,17,7,20,8,4,9,16,10/1/2/12/19/5"},
    {"15-5s_v", "0,1,2,12,14,6,19,18,17,5,20,8,4,9,16,10/3/15/13/11/7"},
    {"15-5s_w", "0,1,2,12,14,13,19,18,7,11,20,8,4,9,16,10/3/15/6/5/17"},
};
const std::pair<const char*, const char*> kAdeOrders[] = {
    {"100-50b",
     "0,1,3,5,6,8,9,10,12,13,14,18,19,21,22,23,24,25,26,27,28,29,31,32,33,34,36,38,39,40,42,43,44,45,46,"
     "47,48,49,53,54,55,56,57,58,60,61,62,63,69,70,71,74,75,76,77,80,81,82,84,86,87,90,91,93,95,96,99,100,"
     "101,103,104,105,106,107,109,113,116,117,119,120,121,123,125,126,128,129,130,131,132,133,134,135,136,"
     "140,142,143,144,147,148,149,150/2,4,7,11,15,16,17,20,30,35,37,41,50,51,52,59,64,65,66,67,68,72,73,"
     "78,79,83,85,88,89,92,94,97,98,102,108,110,111,112,114,115,118,122,124,127,137,138,139,141,145,146"},
    {"100-50c",
     "0,1,5,6,8,9,10,11,12,13,14,16,17,19,20,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,40,41,43,44,45,"
     "46,48,50,52,54,56,57,61,63,65,66,67,68,69,70,71,74,76,77,78,79,81,82,83,84,85,86,87,90,94,95,96,97,"
     "98,99,102,105,106,109,110,111,112,114,115,118,119,120,121,123,124,126,128,129,132,133,134,135,136,"
     "138,139,142,143,144,146,147,149/2,3,4,7,15,18,21,22,38,39,42,47,49,51,53,55,58,59,60,62,64,72,73,75,"
     "80,88,89,91,92,93,100,101,103,104,107,108,113,116,117,122,125,127,130,131,137,140,141,145,148,150"},
    {"100-10b",
     "0,1,3,5,6,8,9,10,12,13,14,18,19,21,22,23,24,25,26,27,28,29,31,32,33,34,36,38,39,40,42,43,44,45,46,"
     "47,48,49,53,54,55,56,57,58,60,61,62,63,69,70,71,74,75,76,77,80,81,82,84,86,87,90,91,93,95,96,99,100,"
     "101,103,104,105,106,107,109,113,116,117,119,120,121,123,125,126,128,129,130,131,132,133,134,135,136,"
     "140,142,143,144,147,148,149,150/11,16,50,64,66,73,89,92,145,146/30,37,51,52,72,85,98,114,115,138/2,"
     "35,65,97,110,111,112,118,124,141/4,7,15,41,67,78,79,88,108,139/17,20,59,68,83,94,102,122,127,137"},
    {"100-10c",
     "0,1,5,6,8,9,10,11,12,13,14,16,17,19,20,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,40,41,43,44,45,"
     "46,48,50,52,54,56,57,61,63,65,66,67,68,69,70,71,74,76,77,78,79,81,82,83,84,85,86,87,90,94,95,96,97,"
     "98,99,102,105,106,109,110,111,112,114,115,118,119,120,121,123,124,126,128,129,132,133,134,135,136,"
     "138,139,142,143,144,146,147,149/3,4,7,18,39,64,73,101,113,137/47,51,55,60,62,80,116,127,140,148/22,"
     "42,49,58,59,89,91,92,108,125/2,38,53,100,104,117,130,131,141,145/15,21,72,75,88,93,103,107,122,150"},
    {"50b",
     "0,1,9,14,18,22,24,25,27,28,29,32,38,42,45,46,47,48,49,54,56,58,61,62,63,69,74,75,76,77,81,82,84,90,"
     "93,96,100,103,104,109,117,119,121,123,128,129,130,134,135,136,144/3,5,6,8,10,12,13,19,21,23,26,31,"
     "33,34,36,39,40,43,44,53,55,57,60,70,71,80,86,87,91,95,99,101,105,106,107,113,116,120,125,126,131,"
     "132,133,140,142,143,147,148,149,150/2,4,7,11,15,16,17,20,30,35,37,41,50,51,52,59,64,65,66,67,68,72,"
     "73,78,79,83,85,88,89,92,94,97,98,102,108,110,111,112,114,115,118,122,124,127,137,138,139,141,145,146"},
    {"50c",
     "0,5,10,11,12,13,16,17,19,20,23,27,28,30,31,32,33,37,43,46,52,56,57,65,66,69,70,74,76,77,79,82,83,86,"
     "87,105,109,110,111,119,128,129,132,133,134,138,142,143,144,146,147/1,6,8,9,14,24,25,26,29,34,35,36,"
     "40,41,44,45,48,50,54,61,63,67,68,71,78,81,84,85,90,94,95,96,97,98,99,102,106,112,114,115,118,120,"
     "121,123,124,126,135,136,139,149/2,3,4,7,15,18,21,22,38,39,42,47,49,51,53,55,58,59,60,62,64,72,73,75,"
     "80,88,89,91,92,93,100,101,103,104,107,108,113,116,117,122,125,127,130,131,137,140,141,145,148,150"},
};

}  // namespace

TEST_CASE("VOC reference tasks: steps, per-step class counts, old and new channel ranges", "[cpu]") {
  const LabelSpace voc = LabelSpace::voc();
  Task t15_1 = Task::create(voc, "15-5s");
  CHECK(t15_1.name() == "15-5s");
  CHECK(t15_1.num_steps() == 6);
  CHECK(t15_1.classes(0) == iota_vector(0, 15));
  for (int s = 1; s <= 5; ++s) CHECK(t15_1.classes(s) == std::vector<int>{15 + s});
  CHECK(t15_1.classes_per_step(3) == std::vector<int>{16, 1, 1, 1});
  CHECK(t15_1.num_channels(3) == 19);
  CHECK(t15_1.old_channels(3) == 18);
  CHECK(t15_1.new_channels(3) == 1);
  CHECK(t15_1.old_range(3).begin == 0);
  CHECK(t15_1.old_range(3).end == 18);
  CHECK(t15_1.new_range(3).begin == 18);
  CHECK(t15_1.new_range(3).end == 19);
  CHECK(t15_1.old_channels(0) == 0);
  CHECK(t15_1.num_channels(0) == 16);
  check_covers_every_class(t15_1);

  // The paper name of 15-5s is 15-1: the same task, reported under the reference key.
  Task paper = Task::create(voc, "15-1");
  CHECK(paper.name() == "15-5s");
  for (int s = 0; s < 6; ++s) CHECK(paper.classes(s) == t15_1.classes(s));

  struct Expected {
    const char* name;
    std::vector<int> sizes;
  };
  const Expected expected[] = {{"offline", {21}},       {"joint", {21}},      {"19-1", {20, 1}},
                               {"15-5", {16, 5}},       {"10-5-5", {11, 5, 5}}, {"5-3", {6, 3, 3, 3, 3, 3}},
                               {"10-1", {11, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}};
  for (const Expected& e : expected) {
    Task task = Task::create(voc, e.name);
    INFO(task.describe());
    CHECK(task.classes_per_step(task.last_step()) == e.sizes);
    check_covers_every_class(task);
    // Natural orders: channel = raw id.
    for (int raw = 0; raw <= 20; ++raw) CHECK(task.channel_of(task.last_step(), raw) == raw);
  }
  CHECK(Task::create(voc, "15-5").classes(1) == iota_vector(16, 20));
  CHECK(Task::create(voc, "10-5-5").classes(1) == iota_vector(11, 15));
  CHECK(Task::create(voc, "5-3").classes(2) == std::vector<int>{9, 10, 11});
  CHECK(Task::create(voc, "joint").name() == "offline");
}

TEST_CASE("VOC 19-1b re-indexes class 5 to the last channel", "[cpu]") {
  Task task = Task::create(LabelSpace::voc(), "19-1b");
  std::vector<int> base = iota_vector(0, 20);
  base.erase(base.begin() + 5);
  CHECK(task.classes(0) == base);
  CHECK(task.classes(1) == std::vector<int>{5});
  CHECK(task.channel_of(1, 5) == 20);
  CHECK(task.channel_of(1, 6) == 5);
  CHECK(task.channel_of(0, 5) == -1);
  CHECK(task.channel_of(0, 4) == 4);
  CHECK(task.channel_names(1)[20] == "bottle");
  check_covers_every_class(task);
}

TEST_CASE("VOC 15-1 random orders 15-5s_b ... 15-5s_w are the SPEC §1.4 table, with DKD's aliases", "[cpu]") {
  const LabelSpace voc = LabelSpace::voc();
  std::vector<std::string> names;
  for (char order = 'b'; order <= 'w'; ++order) names.push_back(std::string("15-5s_") + order);
  CHECK(names.size() == 22);
  for (const std::string& name : names) {
    Task task = Task::create(voc, name);
    CHECK(task.name() == name);
    CHECK(task.classes_per_step(5) == std::vector<int>{16, 1, 1, 1, 1, 1});
    check_covers_every_class(task);
    Task alias = Task::create(voc, "15-1_" + name.substr(6));
    CHECK(alias.name() == name);
    CHECK(alias.channel_order(5) == task.channel_order(5));
  }
  // Rows of the table, in full.
  Task b = Task::create(voc, "15-5s_b");
  CHECK(b.channel_order(5) ==
        std::vector<int>{0, 12, 9, 20, 7, 15, 8, 14, 16, 5, 19, 4, 1, 13, 2, 11, 17, 3, 6, 18, 10});
  Task l = Task::create(voc, "15-5s_l");
  CHECK(l.channel_order(5) ==
        std::vector<int>{0, 10, 7, 6, 19, 16, 8, 17, 1, 14, 4, 9, 3, 15, 11, 12, 2, 18, 20, 13, 5});
  Task w = Task::create(voc, "15-5s_w");
  CHECK(w.channel_order(5) ==
        std::vector<int>{0, 1, 2, 12, 14, 13, 19, 18, 7, 11, 20, 8, 4, 9, 16, 10, 3, 15, 6, 5, 17});
  // Channels, not raw ids: 15-5s_b learns sheep (17) at step 1 on channel 16; cow (10) is last.
  CHECK(b.channel_of(1, 17) == 16);
  CHECK(b.channel_names(1)[16] == "sheep");
  CHECK(b.channel_of(4, 10) == -1);
  CHECK(b.channel_of(5, 10) == 20);
  CHECK(b.step_of(10) == 5);
  // Later steps of a few more rows.
  CHECK(Task::create(voc, "15-5s_m").channel_order(5) ==
        std::vector<int>{0, 18, 4, 14, 17, 12, 10, 7, 3, 9, 1, 8, 15, 6, 13, 2, 5, 11, 20, 16, 19});
  CHECK(Task::create(voc, "15-5s_q").channel_order(5) ==
        std::vector<int>{0, 3, 14, 13, 18, 2, 11, 15, 17, 10, 8, 4, 5, 20, 16, 6, 12, 19, 1, 7, 9});
}

TEST_CASE("ADE20K reference tasks: natural orders and orders B and C of SPEC §1.5", "[cpu]") {
  const LabelSpace ade = LabelSpace::ade20k();
  REQUIRE(ade.num_classes() == 151);
  CHECK(Task::create(ade, "offline").classes_per_step(0) == std::vector<int>{151});
  CHECK(Task::create(ade, "100-50").classes_per_step(1) == std::vector<int>{101, 50});
  CHECK(Task::create(ade, "100-10").classes_per_step(5) == std::vector<int>{101, 10, 10, 10, 10, 10});
  Task t100_5 = Task::create(ade, "100-5");
  CHECK(t100_5.num_steps() == 11);
  CHECK(t100_5.classes(10) == iota_vector(146, 150));
  Task fifty = Task::create(ade, "50");
  CHECK(fifty.classes_per_step(2) == std::vector<int>{51, 50, 50});
  CHECK(Task::create(ade, "50-50").name() == "50");
  for (const char* name : {"offline", "100-50", "100-10", "100-5", "50"}) {
    Task task = Task::create(ade, name);
    check_covers_every_class(task);
    for (int raw = 0; raw <= 150; ++raw) CHECK(task.channel_of(task.last_step(), raw) == raw);
  }

  for (const char* name : {"100-50b", "100-50c", "100-10b", "100-10c", "50b", "50c"}) {
    Task task = Task::create(ade, name);
    CHECK(task.name() == name);
    check_covers_every_class(task);
  }
  Task b50 = Task::create(ade, "100-50b"), c50 = Task::create(ade, "100-50c");
  CHECK(b50.classes_per_step(1) == std::vector<int>{101, 50});
  CHECK(c50.classes_per_step(1) == std::vector<int>{101, 50});
  // Ends of the listed rows.
  CHECK(std::vector<int>(b50.classes(0).begin(), b50.classes(0).begin() + 6) == std::vector<int>{0, 1, 3, 5, 6, 8});
  CHECK(b50.classes(0).back() == 150);
  CHECK(std::vector<int>(b50.classes(1).begin(), b50.classes(1).begin() + 4) == std::vector<int>{2, 4, 7, 11});
  CHECK(b50.classes(1).back() == 146);
  CHECK(c50.classes(0).back() == 149);
  CHECK(std::vector<int>(c50.classes(1).begin(), c50.classes(1).begin() + 5) == std::vector<int>{2, 3, 4, 7, 15});
  // 100-10b/c start from the 100-50b/c base; their increments partition the 50 new classes.
  Task b10 = Task::create(ade, "100-10b"), c10 = Task::create(ade, "100-10c");
  CHECK(b10.classes(0) == b50.classes(0));
  CHECK(c10.classes(0) == c50.classes(0));
  CHECK(b10.classes(1) == std::vector<int>{11, 16, 50, 64, 66, 73, 89, 92, 145, 146});
  CHECK(b10.classes(5) == std::vector<int>{17, 20, 59, 68, 83, 94, 102, 122, 127, 137});
  CHECK(c10.classes(1) == std::vector<int>{3, 4, 7, 18, 39, 64, 73, 101, 113, 137});
  CHECK(c10.classes(5) == std::vector<int>{15, 21, 72, 75, 88, 93, 103, 107, 122, 150});
  for (const Task* t : {&b10, &c10}) {
    const Task& fifty_new = t == &b10 ? b50 : c50;
    std::set<int> increments;
    for (int s = 1; s <= 5; ++s) increments.insert(t->classes(s).begin(), t->classes(s).end());
    CHECK(increments == std::set<int>(fifty_new.classes(1).begin(), fifty_new.classes(1).end()));
  }
  // 50b/c: 51 + 50 + the 50 new classes of 100-50b/c.
  Task b = Task::create(ade, "50b"), c = Task::create(ade, "50c");
  CHECK(b.classes_per_step(2) == std::vector<int>{51, 50, 50});
  CHECK(b.classes(2) == b50.classes(1));
  CHECK(c.classes(2) == c50.classes(1));
  CHECK(b.classes(0).back() == 144);
  CHECK(b.classes(1).front() == 3);
  CHECK(c.classes(0)[1] == 5);
  CHECK(c.classes(1).back() == 149);
}

TEST_CASE("custom splits: A-B[-C...] with the last size repeated, for any label space", "[cpu]") {
  const LabelSpace twenty = LabelSpace::numbered(21);
  Task t = Task::create(twenty, "10-2-2-2");
  CHECK(t.classes(0) == iota_vector(0, 10));
  CHECK(t.classes_per_step(t.last_step()) == std::vector<int>{11, 2, 2, 2, 2, 2});
  CHECK(t.classes(5) == std::vector<int>{19, 20});
  CHECK(Task::create(twenty, "10-2").channel_order(5) == t.channel_order(5));
  Task sixteen = Task::create(LabelSpace::numbered(17), "10-2-2-2");
  CHECK(sixteen.classes_per_step(3) == std::vector<int>{11, 2, 2, 2});
  check_covers_every_class(sixteen);
  CHECK(Task::create(twenty, "10").classes_per_step(1) == std::vector<int>{11, 10});
  CHECK(Task::create(twenty, "15-2-2-1").classes_per_step(3) == std::vector<int>{16, 2, 2, 1});
  CHECK(Task::create(twenty, "offline").classes_per_step(0) == std::vector<int>{21});
  CHECK(Task::create(twenty, "20").classes_per_step(0) == std::vector<int>{21});
  CHECK_THROWS_WITH(Task::create(twenty, "15"), Catch::Contains("(16..20) do not fill a step of 15"));
  // The natural reference names are the same splits on any 21-label space.
  CHECK(Task::create(twenty, "15-1").channel_order(5) == Task::create(LabelSpace::voc(), "15-1").channel_order(5));
  CHECK(Task::create(LabelSpace::voc(), "10-2").num_steps() == 6);

  CHECK_THROWS_WITH(Task::create(twenty, "15-2"), Catch::Contains("task '15-2'") && Catch::Contains("(20..20)") &&
                                                      Catch::Contains("15-2-2-1"));
  CHECK_THROWS_WITH(Task::create(twenty, "25-5"), Catch::Contains("0..25") && Catch::Contains("classes 0..20"));
  CHECK_THROWS_WITH(Task::create(twenty, "15-10"), Catch::Contains("classes up to 25"));
  CHECK_THROWS_WITH(Task::create(twenty, "19-1-1"), Catch::Contains("classes up to 21"));
  CHECK_THROWS_WITH(Task::create(twenty, "0-5"), Catch::Contains("at least one class besides background"));
  CHECK_THROWS_WITH(Task::create(twenty, "10-0"), Catch::Contains("at least one class"));
}

TEST_CASE("class lists: steps of raw ids, ranges, background prepended", "[cpu]") {
  const LabelSpace space = LabelSpace::numbered(16);
  Task t = Task::create(space, "0..10/11,12/15,13..14");
  CHECK(t.classes(0) == iota_vector(0, 10));
  CHECK(t.classes(2) == std::vector<int>{15, 13, 14});
  CHECK(t.channel_of(2, 15) == 13);
  CHECK(t.channel_names(2)[13] == "class 15");
  Task prepended = Task::create(space, "3,1,2/4");
  CHECK(prepended.classes(0) == std::vector<int>{0, 3, 1, 2});
  // Classes left out are never learned.
  CHECK(prepended.step_of(9) == -1);
  CHECK(prepended.channel_of(1, 9) == -1);
  Task listed = Task::from_class_lists(space, {{1, 2}, {5}, {3}}, "mine");
  CHECK(listed.name() == "mine");
  CHECK(listed.channel_order(2) == std::vector<int>{0, 1, 2, 5, 3});

  CHECK_THROWS_WITH(Task::create(space, "0..5/5,6"),
                    Catch::Contains("class 5") && Catch::Contains("repeated") && Catch::Contains("steps 0 and 1"));
  CHECK_THROWS_WITH(Task::create(space, "0..5/6,6"), Catch::Contains("twice in step 1"));
  CHECK_THROWS_WITH(Task::create(space, "0..5/30"),
                    Catch::Contains("class 30 in step 1 is outside") && Catch::Contains("labels 0..15"));
  CHECK_THROWS_WITH(Task::create(space, "0..5//6"), Catch::Contains("step 1 is empty"));
  CHECK_THROWS_WITH(Task::create(space, "0..5/0,6"), Catch::Contains("background (0)") && Catch::Contains("step 1"));
  CHECK_THROWS_WITH(Task::create(space, "3,0,1/2"), Catch::Contains("position 1 of step 0"));
  CHECK_THROWS_WITH(Task::create(space, "0..x/2"), Catch::Contains("'x' is not a class id"));
  CHECK_THROWS_WITH(Task::create(space, "0..5/7..6"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(Task::from_class_lists(space, {{1}, {255}}), Catch::Contains("class 255"));
  CHECK_THROWS_WITH(Task::from_class_lists(space, {{0}, {1, 2}}), Catch::Contains("besides background"));
  CHECK_THROWS_WITH(Task::from_class_lists(space, {}), Catch::Contains("no steps"));
}

// Found reading the code behind fuzz_task (1M fuzz runs had not reached it): a range's width and
// its loop were computed in int, so the widest range overflowed past the size check and a range
// ending at INT_MAX never ended.
TEST_CASE("class-list ranges at the ends of int are refused, not overflowed", "[cpu]") {
  const LabelSpace space = LabelSpace::numbered(16);
  CHECK_THROWS_WITH(Task::create(space, "-2147483648..2147483647"), Catch::Contains("larger than any label space"));
  CHECK_THROWS_WITH(Task::create(space, "1/2147483600..2147483647"),
                    Catch::Contains("class 2147483600 in step 1 is outside"));
  CHECK_THROWS_WITH(Task::create(space, "-3..-1/2"), Catch::Contains("class -3 in step 0 is outside"));
}

TEST_CASE("unknown task names and out-of-range steps are clear errors listing what is valid", "[cpu]") {
  const LabelSpace voc = LabelSpace::voc();
  CHECK_THROWS_WITH(Task::create(voc, "15-5s_z"), Catch::Contains("unknown task '15-5s_z'") &&
                                                      Catch::Contains("15-5s_b ... 15-5s_w") &&
                                                      Catch::Contains("15-5s (15-1)") && Catch::Contains("19-1b"));
  CHECK_THROWS_WITH(Task::create(LabelSpace::ade20k(), "100-50d"),
                    Catch::Contains("100-50b") && Catch::Contains("50 (50-50)"));
  CHECK_THROWS_WITH(Task::create(voc, ""), Catch::Contains("empty task name"));
  // Permuted reference orders exist only in their reference label space.
  CHECK_THROWS_WITH(Task::create(LabelSpace::numbered(31), "15-5s_b"), Catch::Contains("unknown task '15-5s_b'"));
  CHECK_THROWS_WITH(Task::create(LabelSpace::numbered(152, data::DatasetKind::ade20k), "100-50b"),
                    Catch::Contains("unknown task"));
  CHECK_THROWS_WITH(Task::create(LabelSpace{data::DatasetKind::cityscapes, data::cityscapes_class_names()}, "10-1"),
                    Catch::Contains("Cityscapes"));

  Task task = Task::create(voc, "15-1");
  CHECK_THROWS_WITH(task.classes(6), Catch::Contains("task '15-5s' has steps 0..5") && Catch::Contains("got step 6"));
  CHECK_THROWS_WITH(task.num_channels(-1), Catch::Contains("got step -1"));
  CHECK_THROWS_WITH(task.channel_of(0, 21), Catch::Contains("label 21 is outside"));
  CHECK(task.channel_of(0, 16) == -1);
  CHECK(task.seen(5, 20));
  CHECK_FALSE(task.seen(4, 20));
  CHECK(task.describe() == "voc 15-5s: 6 steps, 0..15 | 16 | 17 | 18 | 19 | 20");
}

TEST_CASE("reference names list every key and alias, and each one creates its task", "[cpu]") {
  for (const LabelSpace& space : {LabelSpace::voc(), LabelSpace::ade20k()}) {
    std::vector<std::string> names = Task::reference_names(space);
    CHECK(names.size() >= 10);
    for (const std::string& name : names) CHECK_NOTHROW(Task::create(space, name));
  }
  CHECK(Task::reference_names(LabelSpace::voc()).size() == 10 + 2 * 22);
  CHECK(Task::reference_names(LabelSpace::numbered(11)).empty());
}

TEST_CASE("every row of the SPEC's permuted-order tables, step by step", "[cpu]") {
  for (auto [name, lists] : kVocRandomOrders) {
    Task task = Task::create(LabelSpace::voc(), name), expected = Task::create(LabelSpace::voc(), lists);
    INFO(name);
    REQUIRE(task.num_steps() == expected.num_steps());
    for (int s = 0; s < task.num_steps(); ++s) CHECK(task.classes(s) == expected.classes(s));
  }
  for (auto [name, lists] : kAdeOrders) {
    Task task = Task::create(LabelSpace::ade20k(), name), expected = Task::create(LabelSpace::ade20k(), lists);
    INFO(name);
    REQUIRE(task.num_steps() == expected.num_steps());
    for (int s = 0; s < task.num_steps(); ++s) CHECK(task.classes(s) == expected.classes(s));
  }
}

TEST_CASE("COCO tasks 40-40, 40-10 and 60-20 split the 80 categories in COCO's order", "[cpu]") {
  const LabelSpace coco = LabelSpace::coco();
  REQUIRE(coco.num_classes() == 81);
  CHECK(coco.class_names[1] == "person");
  CHECK(coco.class_names[40] == "bottle");
  CHECK(coco.class_names[41] == "wine glass");
  CHECK(coco.class_names[80] == "toothbrush");

  const Task t40 = Task::create(coco, "40-40");
  REQUIRE(t40.num_steps() == 2);
  CHECK(t40.classes(0) == iota_vector(0, 40));
  CHECK(t40.classes(1) == iota_vector(41, 80));
  CHECK(t40.classes_per_step(1) == std::vector<int>{41, 40});
  CHECK(t40.channel_names(1)[41] == "wine glass");
  CHECK(t40.describe() == "coco 40-40: 2 steps, 0..40 | 41..80");

  const Task t10 = Task::create(coco, "40-10");
  REQUIRE(t10.num_steps() == 5);
  CHECK(t10.classes(4) == iota_vector(71, 80));
  const Task t60 = Task::create(coco, "60-20");
  REQUIRE(t60.num_steps() == 2);
  CHECK(t60.classes(1) == iota_vector(61, 80));
  CHECK(Task::create(coco, "joint").classes(0) == iota_vector(0, 80));
  // Custom splits as for any label space; VOC's and ADE20K's names are not COCO's.
  CHECK(Task::create(coco, "70-5").num_steps() == 3);
  CHECK_THROWS_WITH(Task::create(coco, "15-5s_b"), Catch::Contains("40-40, 40-10, 60-20"));
  for (const std::string& name : Task::reference_names(coco)) CHECK_NOTHROW(Task::create(coco, name));
}
