#include "incremental/recipe.h"

namespace strata::incremental {

namespace {

bool is_voc_15_1(const std::string& name) { return name == "15-5s" || name.rfind("15-5s_", 0) == 0; }

}  // namespace

Recipe reference_recipe(const Task& task, int step) {
  task.check_step(step);
  Recipe recipe;
  recipe.lr = step == 0 ? 0.01 : 0.001;
  const bool ade = task.labels().kind == data::DatasetKind::ade20k;
  if (ade) {
    recipe.epochs = 60;
  } else {
    recipe.epochs = task.name() == "10-1" && step > 0 ? 10 : 30;
  }
  return recipe;
}

double mib_kd_weight(const Task& task) {
  const bool voc = task.labels().kind == data::DatasetKind::voc;
  return voc && (is_voc_15_1(task.name()) || task.name() == "10-1") ? 100.0 : 10.0;
}

}  // namespace strata::incremental
