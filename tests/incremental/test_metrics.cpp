// Metrics (incremental/metrics.h, SPEC-continual.md §5): the confusion matrix and every score against
// a brute-force computation (ignored pixels, ground truth outside the seen channels, classes without
// ground truth), old/new/all in both conventions, the readable table, PLOP's results CSV rows with
// Python's float formatting, and average_csv.py's averages.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "engine/error.h"
#include "incremental/metrics.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::incremental;
using strata::test::approx;

namespace {

struct Pixels {
  std::vector<int64_t> predictions, labels;
};

// Random predictions in [0, n) and labels in [0, n) plus ignored (255) and unseen (n, n+1) values;
// class `no_gt` never appears as a label but is predicted.
Pixels random_pixels(int64_t count, int n, int no_gt, uint64_t seed) {
  Generator g(seed);
  std::vector<double> u = Tensor::uniform({count, 2}, 0.0, 1.0, g, DType::f64).to_vector<double>();
  Pixels p;
  for (int64_t i = 0; i < count; ++i) {
    int64_t pred = static_cast<int64_t>(u[static_cast<size_t>(2 * i)] * n);
    double r = u[static_cast<size_t>(2 * i + 1)];
    int64_t label = r < 0.1 ? 255 : r < 0.15 ? n + static_cast<int64_t>(r * 100) % 2 : static_cast<int64_t>(r * n);
    if (label == no_gt) label = (no_gt + 1) % n;
    // Agree often enough for meaningful IoUs.
    if (label < n && u[static_cast<size_t>(2 * i)] < 0.5) pred = label;
    p.predictions.push_back(pred);
    p.labels.push_back(label);
  }
  return p;
}

SegmentationScores brute_force(const Pixels& p, int n) {
  std::map<std::pair<int64_t, int64_t>, int64_t> m;
  for (size_t i = 0; i < p.labels.size(); ++i) {
    if (p.labels[i] >= 0 && p.labels[i] < n) m[{p.labels[i], p.predictions[i]}] += 1;
  }
  SegmentationScores s;
  double total = 0, correct = 0, iou_sum = 0, acc_sum = 0, fw = 0;
  int with_gt = 0;
  for (int c = 0; c < n; ++c) {
    double tp = static_cast<double>(m[{c, c}]), gt = 0, pred = 0;
    for (int k = 0; k < n; ++k) {
      gt += static_cast<double>(m[{c, k}]);
      pred += static_cast<double>(m[{k, c}]);
    }
    s.iou.push_back(tp / (gt + pred - tp + 1e-6));
    s.class_accuracy.push_back(tp / (gt + 1e-6));
    s.ground_truth_pixels.push_back(static_cast<int64_t>(gt));
    s.predicted_pixels.push_back(static_cast<int64_t>(pred));
    total += gt;
    correct += tp;
  }
  for (int c = 0; c < n; ++c) {
    if (s.ground_truth_pixels[static_cast<size_t>(c)] == 0) continue;
    ++with_gt;
    iou_sum += s.iou[static_cast<size_t>(c)];
    acc_sum += s.class_accuracy[static_cast<size_t>(c)];
    fw += static_cast<double>(s.ground_truth_pixels[static_cast<size_t>(c)]) / total * s.iou[static_cast<size_t>(c)];
  }
  s.pixels = static_cast<int64_t>(total);
  s.pixel_accuracy = correct / total;
  s.mean_iou = iou_sum / with_gt;
  s.mean_class_accuracy = acc_sum / with_gt;
  s.frequency_weighted_iou = fw;
  return s;
}

void check_same_scores(const SegmentationScores& a, const SegmentationScores& b) {
  REQUIRE(a.num_classes() == b.num_classes());
  for (int c = 0; c < a.num_classes(); ++c) {
    INFO("class " << c);
    const size_t uc = static_cast<size_t>(c);
    CHECK(a.ground_truth_pixels[uc] == b.ground_truth_pixels[uc]);
    CHECK(a.predicted_pixels[uc] == b.predicted_pixels[uc]);
    CHECK(a.iou[uc] == approx(b.iou[uc]));
    CHECK(a.class_accuracy[uc] == approx(b.class_accuracy[uc]));
  }
  CHECK(a.pixels == b.pixels);
  CHECK(a.pixel_accuracy == approx(b.pixel_accuracy));
  CHECK(a.mean_iou == approx(b.mean_iou));
  CHECK(a.mean_class_accuracy == approx(b.mean_class_accuracy));
  CHECK(a.frequency_weighted_iou == approx(b.frequency_weighted_iou));
}

SegmentationScores scores_of(const std::vector<double>& iou, const std::vector<int64_t>& gt) {
  SegmentationScores s;
  s.iou = iou;
  s.class_accuracy = iou;
  s.ground_truth_pixels = gt;
  s.predicted_pixels = gt;
  double sum = 0;
  int count = 0;
  for (size_t c = 0; c < iou.size(); ++c) {
    if (gt[c] > 0) {
      sum += iou[c];
      ++count;
    }
  }
  s.mean_iou = sum / count;
  return s;
}

}  // namespace

TEST_CASE("confusion matrix and scores match a brute force: ignored, unseen and no-ground-truth classes",
          "[cpu]") {
  const int n = 7;
  Pixels p = random_pixels(2 * 9 * 11, n, 4, 601);
  SegmentationScores expected = brute_force(p, n);
  REQUIRE(expected.ground_truth_pixels[4] == 0);
  REQUIRE(expected.predicted_pixels[4] > 0);
  for (DType pred_dtype : {DType::i64, DType::u8, DType::i32}) {
    for (DType label_dtype : {DType::u8, DType::i64}) {
      INFO(dtype_name(pred_dtype) << " predictions, " << dtype_name(label_dtype) << " labels");
      ConfusionMatrix matrix(n);
      matrix.update(Tensor::from_vector(p.predictions, {2, 9, 11}).to(pred_dtype),
                    Tensor::from_vector(p.labels, {2, 9, 11}).to(label_dtype));
      SegmentationScores s = compute_scores(matrix);
      check_same_scores(s, expected);
      CHECK_FALSE(s.has_ground_truth(4));
      CHECK(s.iou[4] == 0.0);
    }
  }
  // Merging per-part matrices equals one matrix over everything.
  ConfusionMatrix whole(n), first(n), second(n);
  Tensor predictions = Tensor::from_vector(p.predictions, {2, 9, 11});
  Tensor labels = Tensor::from_vector(p.labels, {2, 9, 11}).to(DType::u8);
  whole.update(predictions, labels);
  std::vector<int64_t> pa(p.predictions.begin(), p.predictions.begin() + 99);
  std::vector<int64_t> pb(p.predictions.begin() + 99, p.predictions.end());
  std::vector<int64_t> la(p.labels.begin(), p.labels.begin() + 99), lb(p.labels.begin() + 99, p.labels.end());
  first.update(Tensor::from_vector(pa, {99}), Tensor::from_vector(la, {99}));
  second.update(Tensor::from_vector(pb, {99}), Tensor::from_vector(lb, {99}));
  first.merge(second);
  CHECK(first.counts() == whole.counts());
  whole.reset();
  CHECK(compute_scores(whole).pixels == 0);
  CHECK(std::isnan(compute_scores(whole).mean_iou));
}

TEST_CASE("scores on a hand-made matrix: the 1e-6 epsilon and the classes counted in the means", "[cpu]") {
  // gt:   0 0 0 1 1 2 255 3   (class 3 exists in a 5-class matrix; class 4 never appears)
  // pred: 0 0 1 1 2 2 4   4
  ConfusionMatrix m(5);
  m.update(Tensor::from_vector(std::vector<int64_t>{0, 0, 1, 1, 2, 2, 4, 4}, {8}),
           Tensor::from_vector(std::vector<uint8_t>{0, 0, 0, 1, 1, 2, 255, 3}, {8}));
  CHECK(m.count(0, 0) == 2);
  CHECK(m.count(0, 1) == 1);
  CHECK(m.count(3, 4) == 1);
  SegmentationScores s = compute_scores(m);
  CHECK(s.pixels == 7);
  CHECK(s.iou[0] == 2.0 / (3.0 + 2.0 - 2.0 + 1e-6));
  CHECK(s.iou[1] == 1.0 / (2.0 + 2.0 - 1.0 + 1e-6));
  CHECK(s.iou[2] == 1.0 / (1.0 + 2.0 - 1.0 + 1e-6));
  CHECK(s.iou[3] == 0.0);
  CHECK(s.iou[4] == 0.0);
  CHECK(s.class_accuracy[0] == 2.0 / (3.0 + 1e-6));
  // Class 3 has ground truth (its IoU 0 counts); class 4 has none ("X", excluded).
  CHECK(s.mean_iou == approx((s.iou[0] + s.iou[1] + s.iou[2] + 0.0) / 4));
  CHECK(s.mean_class_accuracy == approx((2.0 / (3 + 1e-6) + 1.0 / (2 + 1e-6) + 1.0 / (1 + 1e-6) + 0.0) / 4));
  CHECK(s.pixel_accuracy == approx(4.0 / 7));
  CHECK(s.mean_iou_over(0, 5) == s.mean_iou);
  CHECK(s.mean_iou_over(1, 3) == approx((s.iou[1] + s.iou[2]) / 2));
  CHECK(std::isnan(s.mean_iou_over(4, 5)));
}

TEST_CASE("confusion matrix rejects predictions outside its classes and mismatched tensors", "[cpu]") {
  ConfusionMatrix m(3);
  std::vector<int64_t> pred = {0, 1, 2, 0, 1, 3};
  std::vector<uint8_t> gt = {0, 1, 2, 0, 1, 2};
  CHECK_THROWS_WITH(m.update(Tensor::from_vector(pred, {1, 2, 3}), Tensor::from_vector(gt, {1, 2, 3})),
                    Catch::Contains("prediction 3 at [0,1,2]") && Catch::Contains("outside the 3 classes"));
  gt[5] = 255;  // an ignored pixel's prediction is not looked at
  CHECK_NOTHROW(m.update(Tensor::from_vector(pred, {1, 2, 3}), Tensor::from_vector(gt, {1, 2, 3})));
  CHECK_THROWS_WITH(m.update(Tensor::from_vector(pred, {6}), Tensor::from_vector(gt, {1, 2, 3})),
                    Catch::Contains("ConfusionMatrix::update"));
  CHECK_THROWS_WITH(m.update(Tensor::zeros({6}), Tensor::from_vector(gt, {6})), Catch::Contains("u8, i32 or i64"));
  ConfusionMatrix other(4);
  CHECK_THROWS_WITH(m.merge(other), Catch::Contains("4-class matrix into a 3-class"));
}

TEST_CASE("old / new / all mean IoU with and without background, classes without ground truth excluded",
          "[cpu]") {
  Task task = Task::create(LabelSpace::voc(), "15-1");
  const int step = 2;  // 18 channels: old = step-0 classes 0..15, new = 16, 17
  std::vector<double> iou(18);
  std::vector<int64_t> gt(18, 10);
  for (int c = 0; c < 18; ++c) iou[static_cast<size_t>(c)] = 0.05 * c;
  gt[7] = 0;   // an old class without ground truth
  gt[17] = 0;  // a new class without ground truth
  SegmentationScores s = scores_of(iou, gt);
  StepMeans m = step_means(s, task, step);
  auto mean = [&](int begin, int end) {
    double total = 0;
    int count = 0;
    for (int c = begin; c < end; ++c) {
      if (c == 7 || c == 17) continue;
      total += 0.05 * c;
      ++count;
    }
    return total / count;
  };
  CHECK(m.old_classes.begin == 0);
  CHECK(m.old_classes.end == 16);
  CHECK(m.new_classes.begin == 16);
  CHECK(m.new_classes.end == 18);
  CHECK(m.old_with_background == approx(mean(0, 16)));
  CHECK(m.old_without_background == approx(mean(1, 16)));
  CHECK(m.new_with_background == approx(0.8));
  CHECK(m.new_without_background == approx(0.8));
  CHECK(m.all_with_background == approx(mean(0, 18)));
  CHECK(m.all_without_background == approx(mean(1, 18)));
  CHECK(m.all_with_background == approx(s.mean_iou));
  StepMeans first = step_means(scores_of(std::vector<double>(16, 0.5), std::vector<int64_t>(16, 1)), task, 0);
  CHECK(std::isnan(first.new_with_background));
  CHECK(first.old_without_background == approx(0.5));
  CHECK_THROWS_WITH(step_means(s, task, 3), Catch::Contains("scores of 18 classes for step 3"));
}

TEST_CASE("the readable table names classes, marks missing ground truth and labels both conventions", "[cpu]") {
  Task task = Task::create(LabelSpace::voc(), "15-5s_b");
  std::vector<int64_t> gt(17, 100);
  gt[3] = 0;
  SegmentationScores s = scores_of(std::vector<double>(17, 0.625), gt);
  s.pixel_accuracy = 0.9;
  s.mean_class_accuracy = 0.8;
  s.frequency_weighted_iou = 0.7;
  std::string text = format_scores(s, task, 1);
  INFO(text);
  CHECK_THAT(text, Catch::Contains("voc 15-5s_b: 6 steps"));
  CHECK_THAT(text, Catch::Contains("sheep"));        // channel 16 = raw 17
  CHECK_THAT(text, Catch::Contains("tvmonitor"));    // channel 3 = raw 20, without ground truth
  CHECK_THAT(text, Catch::Contains("background included (PLOP convention)"));
  CHECK_THAT(text, Catch::Contains("background excluded (MiB convention)"));
  CHECK_THAT(text, Catch::Contains("old 0-15: 62.50"));
  CHECK_THAT(text, Catch::Contains("old 1-15: 62.50"));
  CHECK_THAT(text, Catch::Contains("new 16: 62.50"));
  CHECK_THAT(text, Catch::Contains("pixel accuracy 90.00%"));
  // The tvmonitor row: channel 3, raw 20, step 0, "X" for IoU and accuracy.
  size_t row = text.find("tvmonitor");
  REQUIRE(row != std::string::npos);
  std::string line = text.substr(text.rfind('\n', row) + 1, text.find('\n', row) - text.rfind('\n', row) - 1);
  CHECK_THAT(line, Catch::Contains("     3     20  tvmonitor"));
  CHECK_THAT(line, Catch::Contains("X"));
}

TEST_CASE("PLOP results CSV rows: 'x' for unseen channels, 'X' without ground truth, Python float text", "[cpu]") {
  Task task = Task::create(LabelSpace::numbered(6), "2-1");  // 0..2 | 3 | 4 | 5
  SegmentationScores s = scores_of({0.5, 1.0, 0.0, 0.1 + 0.2}, {5, 5, 0, 5});
  s.mean_iou = 1.0 / 3.0;
  CHECK(results_csv_row(1, s, task) == "1,0.5,1.0,X,0.30000000000000004,x,x,0.3333333333333333");
  SegmentationScores small = scores_of({2.5e-05, 0.0001, 0.0, 123.0, 1e16, 1e-300}, {1, 1, 1, 1, 1, 1});
  small.mean_iou = 0.0;
  CHECK(results_csv_row(3, small, task) == "3,2.5e-05,0.0001,0.0,123.0,1e+16,1e-300,0.0");
  SegmentationScores too_many = scores_of(std::vector<double>(7, 0.5), std::vector<int64_t>(7, 1));
  CHECK_THROWS_WITH(results_csv_row(0, too_many, task), Catch::Contains("7 classes for a label space of 6"));
}

TEST_CASE("average_results_csv follows average_csv.py: final, average, first and last columns", "[cpu]") {
  // Step 0 sees channels 0..2 (then 'x'); the split column is the first 'x' (column 4).
  const std::string csv =
      "0,0.9,0.8,0.7,x,x,0.8\n"
      "1,0.8,0.6,X,0.5,x,0.6\n"
      "2,0.7,0.5,0.4,0.3,0.1,0.4\n";
  ResultsAverage a = average_results_csv(csv);
  CHECK(a.rows == 3);
  CHECK(a.last_step == "2");
  CHECK(a.final_miou == approx(0.4));
  CHECK(a.average_miou == approx((0.8 + 0.6 + 0.4) / 3));
  CHECK(a.first_miou == approx((0.7 + 0.5 + 0.4) / 3));  // from the last row only
  CHECK(a.last_miou == approx((0.3 + 0.1) / 2));
  // 'X' and 'x' cells add nothing but still count in the denominator.
  ResultsAverage b = average_results_csv("0,0.9,0.8,x,x,0.85\n1,0.6,X,0.4,x,0.5\n");
  CHECK(b.first_miou == approx(0.6 / 2));
  CHECK(b.last_miou == approx(0.4 / 2));
  // One row: first and last stay 0; no 'x' in the first row: "last" is empty (0).
  ResultsAverage single = average_results_csv("0,0.9,0.7,0.8\n");
  CHECK(single.final_miou == approx(0.8));
  CHECK(single.first_miou == 0.0);
  ResultsAverage offline = average_results_csv("0,0.9,0.7,0.8\n0,0.5,0.7,0.6\n");
  CHECK(offline.first_miou == approx(0.6));
  CHECK(offline.last_miou == 0.0);
  CHECK(offline.average_miou == approx(0.7));
  // Rows written by results_csv_row read back.
  Task task = Task::create(LabelSpace::numbered(4), "1-1");
  std::string rows = results_csv_row(0, scores_of({0.75, 0.25}, {1, 1}), task) + "\n" +
                     results_csv_row(1, scores_of({0.5, 0.25, 0.125}, {1, 1, 1}), task) + "\n" +
                     results_csv_row(2, scores_of({0.5, 0.25, 0.125, 0.0}, {1, 1, 1, 0}), task) + "\n";
  ResultsAverage r = average_results_csv(rows);
  CHECK(r.rows == 3);
  CHECK(r.final_miou == approx((0.5 + 0.25 + 0.125) / 3));
  CHECK(r.first_miou == approx(0.75 / 2));
  CHECK(r.last_miou == approx(0.125 / 2));
  CHECK_THROWS_WITH(average_results_csv("0,0.5,abc\n"), Catch::Contains("line 1") && Catch::Contains("'abc'"));
  CHECK_THROWS_WITH(average_results_csv("\n"), Catch::Contains("no rows"));
}
