#include "runtime/engine/run_report.h"

#include <filesystem>

#include "runtime/base/output_file.h"
#include "runtime/base/torch_compat.h"

namespace slim::engine {

void ExportModelAndReport(const TrainingSetup& setup, nlohmann::json job_fields) {
  const std::filesystem::path dir = setup.config->global.output_dir;
  nlohmann::json report = {{"model", setup.model_reference},
                           {"ranks", setup.comm->Size()},
                           {"device", setup.device.str()},
                           {"libtorch_version", compat::TorchVersionString()}};
  const auto deployed =
      setup.compressor->SaveDeployable(setup.model, (dir / "model.pt").string(), &report);
  report.update(job_fields);
  report.update({{"parameters", deployed.parameters},
                 {"model_size_bytes", deployed.state_bytes},
                 {"model_file_bytes", deployed.file_bytes}});
  files::WriteAtomically((dir / "report.json").string(), report.dump(2) + "\n");
}

}  // namespace slim::engine
