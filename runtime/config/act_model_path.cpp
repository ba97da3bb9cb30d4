#include "runtime/config/act_model_path.h"

#include <filesystem>

namespace slim::config {

std::string ActModelPath(const std::string& dir, const std::string& filename) {
  if (filename.empty()) return dir;
  return (std::filesystem::path(dir) / filename).string();
}

std::string GetModelPath(ConfigSection& section, const std::string& model_key,
                         const std::string& prefix, const std::string& fallback) {
  const std::string dir_key = prefix + "model_dir";
  const std::string file_key = prefix + "model_filename";
  section.Ignore(prefix + "params_filename",
                 "a TorchScript file holds its weights; name it with " + model_key + " or " +
                     dir_key + " and " + file_key);
  if (!section.Has(dir_key)) {
    if (section.Has(file_key)) {
      section.Fail(file_key, "needs " + dir_key + " (the model is " + dir_key + "/" + file_key +
                                 "), or name the file with " + model_key);
    }
    if (fallback.empty() && !section.Has(model_key)) {
      section.Fail(model_key, "required key is missing; name the TorchScript file (or builtin:"
                              "<name>) with " + model_key + ", or with ACT's " + dir_key +
                              " and " + file_key);
    }
    return section.Get<std::string>(model_key, fallback);
  }
  if (section.Has(model_key)) {
    section.Fail(dir_key, "and " + model_key + " both name the model; keep " + model_key +
                              " or ACT's " + dir_key + " with " + file_key);
  }
  const auto dir = section.Get<std::string>(dir_key, "");
  return ActModelPath(dir, section.Get<std::string>(file_key, ""));
}

}  // namespace slim::config
