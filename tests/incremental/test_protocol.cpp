// Protocols (incremental/protocol.h, SPEC-continual.md §2): the disjoint / overlapped training
// filters, validation and test filters, per-step image counts against a brute-force scan of the
// generated dataset's label PNGs, and the training / validation / test label tables of both
// conventions (plop, mib) entry by entry, including through the loader's label_map hook.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "data/generate.h"
#include "data/image.h"
#include "data/label_index.h"
#include "data/loader.h"
#include "engine/error.h"
#include "incremental/protocol.h"
#include "tests/data/temp_dir.h"

using namespace strata;
using namespace strata::incremental;

namespace {

std::bitset<256> labels_of(std::initializer_list<int> values) {
  std::bitset<256> b;
  for (int v : values) b.set(static_cast<size_t>(v));
  return b;
}

// A generated VOC-layout dataset with 20 classes (the VOC label space: every VOC task applies),
// shared read-only by the tests below.
const std::string& generated_root() {
  static test::TempDir dir("incremental_protocol");
  static bool made = [] {
    data::GenerateOptions o;
    o.classes = 20;
    o.train = 160;
    o.val = 40;
    o.size = 40;
    o.max_objects = 4;
    o.seed = 5;
    o.threads = 2;
    data::generate_dataset(dir.str(), o);
    return true;
  }();
  (void)made;
  static const std::string root = dir.str();
  return root;
}

// U(x) of every sample, read straight from its label PNG (not through the label index).
std::vector<std::set<int>> scan_label_pngs(const data::Dataset& dataset) {
  std::vector<std::set<int>> sets;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    data::Image label = data::read_label(dataset.sample(i).label);
    sets.emplace_back(label.pixels.begin(), label.pixels.end());
  }
  return sets;
}

// The SPEC §2.2 filters, written out over explicit class sets.
struct StepSets {
  std::set<int> current, seen;  // C_t and C_<=t, both without 0
};
StepSets step_sets(const Task& task, int step) {
  StepSets s;
  for (int t = 0; t <= step; ++t) {
    for (int c : task.classes(t)) {
      if (c == 0) continue;
      s.seen.insert(c);
      if (t == step) s.current.insert(c);
    }
  }
  return s;
}
bool intersects(const std::set<int>& a, const std::set<int>& b) {
  return std::any_of(a.begin(), a.end(), [&](int v) { return b.count(v) > 0; });
}
std::vector<int64_t> brute_force(const std::vector<std::set<int>>& images, const Task& task, int step,
                                 const std::string& which) {
  StepSets s = step_sets(task, step);
  std::vector<int64_t> kept;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::set<int>& u = images[i];
    bool keep = false;
    if (which == "overlapped" || which == "validation") keep = intersects(u, s.current);
    if (which == "test") keep = intersects(u, s.seen);
    if (which == "disjoint") {
      keep = intersects(u, s.current) &&
             std::all_of(u.begin(), u.end(), [&](int v) { return v == 0 || v == 255 || s.seen.count(v) > 0; });
    }
    if (keep) kept.push_back(static_cast<int64_t>(i));
  }
  return kept;
}

}  // namespace

TEST_CASE("training filters: overlapped keeps any image with a current class, disjoint no future class",
          "[cpu]") {
  Task task = Task::create(LabelSpace::voc(), "15-5");
  data::LabelIndex index(8);
  index.set(0, labels_of({0, 5}));
  index.set(1, labels_of({0, 5, 17}));    // an old and a future class
  index.set(2, labels_of({0, 255, 17}));
  index.set(3, labels_of({0}));           // background only
  index.set(4, labels_of({0, 255}));
  index.set(5, labels_of({0, 3}));
  index.set_bad(5, "label map '5.png': value 40 is outside");  // unreadable (under skip_bad): never used
  index.set(6, labels_of({3, 18, 255}));  // no background pixel
  index.set(7, labels_of({16, 20}));

  CHECK(training_images(index, task, 0, Protocol::overlapped) == std::vector<int64_t>{0, 1, 6});
  CHECK(training_images(index, task, 0, Protocol::disjoint) == std::vector<int64_t>{0});
  CHECK(training_images(index, task, 1, Protocol::overlapped) == std::vector<int64_t>{1, 2, 6, 7});
  CHECK(training_images(index, task, 1, Protocol::disjoint) == std::vector<int64_t>{1, 2, 6, 7});
  CHECK(training_step_sizes(index, task, Protocol::disjoint) == std::vector<int64_t>{1, 4});
  CHECK(training_step_sizes(index, task, Protocol::overlapped) == std::vector<int64_t>{3, 4});
  CHECK(validation_images(index, task, 0) == std::vector<int64_t>{0, 1, 6});
  CHECK(validation_images(index, task, 1) == std::vector<int64_t>{1, 2, 6, 7});
  CHECK(test_images(index, task, 0) == std::vector<int64_t>{0, 1, 6});
  CHECK(test_images(index, task, 1) == std::vector<int64_t>{0, 1, 2, 6, 7});

  // A permuted order: 15-5s_b learns 17 at step 1 and 3 at step 2 (raw ids, not channels).
  Task b = Task::create(LabelSpace::voc(), "15-5s_b");
  CHECK(keep_for_training(labels_of({0, 17}), b, 1, Protocol::disjoint));
  CHECK_FALSE(keep_for_training(labels_of({0, 17, 3}), b, 1, Protocol::disjoint));
  CHECK(keep_for_training(labels_of({0, 17, 3}), b, 1, Protocol::overlapped));
  CHECK(keep_for_training(labels_of({0, 17, 3, 12}), b, 2, Protocol::disjoint));
  CHECK_FALSE(keep_for_training(labels_of({0, 16}), b, 1, Protocol::overlapped));  // 16 is in step 0 of _b
  CHECK_THROWS_WITH(training_images(index, task, 2, Protocol::disjoint), Catch::Contains("has steps 0..1"));
}

TEST_CASE("per-step image counts equal a brute-force scan of the generated label PNGs", "[cpu]") {
  data::Dataset train = data::Dataset::voc(generated_root(), "train_aug");
  data::Dataset val = data::Dataset::voc(generated_root(), "val");
  REQUIRE(train.num_classes() == 21);
  data::LabelIndex train_index = data::build_label_index(train, 2);
  data::LabelIndex val_index = data::build_label_index(val, 2);
  std::vector<std::set<int>> train_sets = scan_label_pngs(train), val_sets = scan_label_pngs(val);
  auto with_object = [](const std::vector<std::set<int>>& sets) {
    return std::count_if(sets.begin(), sets.end(), [](const std::set<int>& u) {
      return std::any_of(u.begin(), u.end(), [](int v) { return v != 0 && v != 255; });
    });
  };
  const int64_t train_with_object = with_object(train_sets), val_with_object = with_object(val_sets);
  CHECK(train_with_object > train.size() * 9 / 10);

  for (const char* name : {"15-5", "15-1", "15-5s_c", "19-1b", "10-1", "5-3", "10-5-5"}) {
    Task task = Task::create(train, name);
    INFO(task.describe());
    std::vector<int64_t> disjoint_sizes, overlapped_sizes;
    int64_t disjoint_total = 0;
    for (int step = 0; step < task.num_steps(); ++step) {
      INFO("step " << step);
      std::vector<int64_t> disjoint = training_images(train_index, task, step, Protocol::disjoint);
      std::vector<int64_t> overlapped = training_images(train_index, task, step, Protocol::overlapped);
      CHECK(disjoint == brute_force(train_sets, task, step, "disjoint"));
      CHECK(overlapped == brute_force(train_sets, task, step, "overlapped"));
      CHECK(validation_images(val_index, task, step) == brute_force(val_sets, task, step, "validation"));
      CHECK(test_images(val_index, task, step) == brute_force(val_sets, task, step, "test"));
      CHECK(std::includes(overlapped.begin(), overlapped.end(), disjoint.begin(), disjoint.end()));
      disjoint_sizes.push_back(static_cast<int64_t>(disjoint.size()));
      overlapped_sizes.push_back(static_cast<int64_t>(overlapped.size()));
      disjoint_total += static_cast<int64_t>(disjoint.size());
    }
    CHECK(training_step_sizes(train_index, task, Protocol::disjoint) == disjoint_sizes);
    CHECK(training_step_sizes(train_index, task, Protocol::overlapped) == overlapped_sizes);
    // Disjoint partitions the images holding an object: each goes to the step of its latest class.
    CHECK(disjoint_total == train_with_object);
    // At the last step every val image with an object is a test image.
    CHECK(static_cast<int64_t>(test_images(val_index, task, task.last_step()).size()) == val_with_object);
    // The generated classes co-occur: overlapped steps > 0 see more images than disjoint ones.
    if (std::string(name) == "15-5") CHECK(overlapped_sizes[0] > disjoint_sizes[0]);
  }
}

namespace {

// SPEC §2.3-2.5 and the choices table, as explicit rules per raw value.
enum class Split { training, validation, test };
int expected_target(const Task& task, int step, int raw, Split split, Convention convention) {
  const bool mib = convention == Convention::mib;
  const bool ade = task.labels().kind == data::DatasetKind::ade20k;
  if (raw == 255) return split == Split::training && mib ? 0 : 255;
  if (raw >= task.labels().num_classes()) return 255;
  const int learned_at = task.step_of(raw);
  const bool current = learned_at == step;
  const bool seen = learned_at >= 0 && learned_at <= step;
  switch (split) {
    case Split::training:
      return current ? task.channel_of(step, raw) : 0;
    case Split::validation:
      if (current && !(raw == 0 && ade && mib)) return task.channel_of(step, raw);
      if (!mib) return 0;
      return raw == 0 && !ade ? 0 : 255;
    case Split::test:
      if (raw == 0) return mib && ade ? 255 : 0;
      if (seen) return task.channel_of(step, raw);
      return mib ? 255 : 0;
  }
  return -1;
}

void check_tables(const Task& task) {
  for (Convention convention : {Convention::plop, Convention::mib}) {
    for (int step = 0; step < task.num_steps(); ++step) {
      INFO(task.describe() << ", step " << step << ", convention " << convention_name(convention));
      LabelTable training = training_label_table(task, step, convention);
      LabelTable validation = validation_label_table(task, step, convention);
      LabelTable test = test_label_table(task, step, convention);
      for (int raw = 0; raw < 256; ++raw) {
        INFO("raw " << raw);
        CHECK(training[static_cast<size_t>(raw)] == expected_target(task, step, raw, Split::training, convention));
        CHECK(validation[static_cast<size_t>(raw)] == expected_target(task, step, raw, Split::validation, convention));
        CHECK(test[static_cast<size_t>(raw)] == expected_target(task, step, raw, Split::test, convention));
      }
    }
  }
}

}  // namespace

TEST_CASE("label tables follow SPEC §2.3-2.5 for both conventions, entry by entry", "[cpu]") {
  for (const char* name : {"15-5s", "15-5s_b", "19-1b", "10-1"}) check_tables(Task::create(LabelSpace::voc(), name));
  for (const char* name : {"100-50", "50b"}) check_tables(Task::create(LabelSpace::ade20k(), name));
  check_tables(Task::create(LabelSpace::numbered(12), "5-2-4"));
}

TEST_CASE("label tables, literal entries: VOC 15-1 step 2 and ADE 100-50 step 1", "[cpu]") {
  Task voc = Task::create(LabelSpace::voc(), "15-1");  // step 2 learns 17; 16 is old, 18..20 future
  LabelTable plop_train = training_label_table(voc, 2, Convention::plop);
  LabelTable mib_train = training_label_table(voc, 2, Convention::mib);
  CHECK(plop_train[17] == 17);
  CHECK(plop_train[0] == 0);
  CHECK(plop_train[16] == 0);
  CHECK(plop_train[3] == 0);
  CHECK(plop_train[19] == 0);
  CHECK(plop_train[255] == 255);  // PLOP: VOC void ignored
  CHECK(mib_train[255] == 0);     // MiB: VOC void becomes background
  CHECK(mib_train[17] == 17);
  CHECK(mib_train[3] == 0);
  LabelTable plop_val = validation_label_table(voc, 2, Convention::plop);
  LabelTable mib_val = validation_label_table(voc, 2, Convention::mib);
  CHECK(plop_val[3] == 0);
  CHECK(plop_val[19] == 0);
  CHECK(mib_val[3] == 255);
  CHECK(mib_val[19] == 255);
  CHECK(mib_val[0] == 0);
  CHECK(mib_val[17] == 17);
  LabelTable plop_test = test_label_table(voc, 2, Convention::plop);
  LabelTable mib_test = test_label_table(voc, 2, Convention::mib);
  CHECK(plop_test[16] == 16);
  CHECK(plop_test[19] == 0);    // PLOP: unseen classes are background at test
  CHECK(mib_test[19] == 255);   // MiB: ignored
  CHECK(mib_test[0] == 0);
  CHECK(plop_test[255] == 255);
  CHECK(mib_test[255] == 255);

  // Permuted order: raw ids go to their channel.
  Task b = Task::create(LabelSpace::voc(), "15-5s_b");
  CHECK(training_label_table(b, 1, Convention::plop)[17] == 16);
  CHECK(test_label_table(b, 1, Convention::plop)[12] == 1);
  CHECK(test_label_table(b, 1, Convention::plop)[3] == 0);

  Task ade = Task::create(LabelSpace::ade20k(), "100-50");
  CHECK(test_label_table(ade, 1, Convention::plop)[0] == 0);   // PLOP counts ADE "other" as class 0
  CHECK(test_label_table(ade, 1, Convention::mib)[0] == 255);  // MiB ignores it: a 150-class mean
  CHECK(test_label_table(ade, 0, Convention::mib)[120] == 255);
  CHECK(test_label_table(ade, 0, Convention::plop)[120] == 0);
  CHECK(training_label_table(ade, 1, Convention::mib)[0] == 0);
  CHECK(validation_label_table(ade, 1, Convention::mib)[0] == 255);
  CHECK(validation_label_table(ade, 1, Convention::plop)[0] == 0);
  CHECK(training_label_table(ade, 1, Convention::plop)[120] == 120);
  CHECK(training_label_table(ade, 1, Convention::plop)[7] == 0);
}

TEST_CASE("label tables drive the loader: batch labels are the table applied to the raw labels", "[cpu]") {
  data::Dataset train = data::Dataset::voc(generated_root(), "train_aug");
  data::LabelIndex index = data::build_label_index(train, 2);
  Task task = Task::create(train, "15-1");
  const int step = 2;
  for (Convention convention : {Convention::plop, Convention::mib}) {
    INFO("convention " << convention_name(convention));
    data::LoaderOptions options;
    options.mode = data::LoaderMode::eval;
    options.batch_size = 4;
    options.crop_size = 32;
    options.workers = 1;
    options.subset = training_images(index, task, step, Protocol::overlapped);
    REQUIRE(!options.subset.empty());
    data::LoaderOptions raw_options = options;
    const LabelTable table = training_label_table(task, step, convention);
    options.label_map = table;
    data::Loader mapped(train, options), raw(train, raw_options);
    mapped.start_epoch(0);
    raw.start_epoch(0);
    std::set<int> seen_targets;
    while (std::optional<data::Batch> a = mapped.next()) {
      std::optional<data::Batch> b = raw.next();
      REQUIRE(b);
      std::vector<uint8_t> targets = a->labels.to_vector<uint8_t>(), labels = b->labels.to_vector<uint8_t>();
      REQUIRE(targets.size() == labels.size());
      for (size_t i = 0; i < targets.size(); ++i) {
        CHECK(targets[i] == table[labels[i]]);
        seen_targets.insert(targets[i]);
      }
    }
    // Only background, the step's channel (17) and, for plop, the void band remain.
    std::set<int> allowed = convention == Convention::plop ? std::set<int>{0, 17, 255} : std::set<int>{0, 17};
    CHECK(std::includes(allowed.begin(), allowed.end(), seen_targets.begin(), seen_targets.end()));
    CHECK(seen_targets.count(17) == 1);
  }
}

TEST_CASE("protocol and convention names parse, and bad ones are clear errors", "[cpu]") {
  CHECK(parse_protocol("disjoint") == Protocol::disjoint);
  CHECK(parse_protocol("overlapped") == Protocol::overlapped);
  CHECK(parse_protocol("overlap") == Protocol::overlapped);
  CHECK(parse_convention("plop") == Convention::plop);
  CHECK(parse_convention("mib") == Convention::mib);
  CHECK(std::string(protocol_name(Protocol::overlapped)) == "overlapped");
  CHECK(std::string(convention_name(Convention::mib)) == "mib");
  CHECK_THROWS_WITH(parse_protocol("partition"), Catch::Contains("disjoint or overlapped"));
  CHECK_THROWS_WITH(parse_convention("csseg"), Catch::Contains("plop (the default) or mib"));
}
