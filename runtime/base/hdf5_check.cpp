#include "runtime/base/hdf5_check.h"

#include "runtime/base/errors.h"

namespace slim::hdf5 {
namespace {

// H5Ewalk2 callback keeping the description of the last (innermost) error record.
herr_t KeepInnermostMessage(unsigned /*n*/, const H5E_error2_t* record, void* message) {
  if (record->desc != nullptr && record->desc[0] != '\0') {
    *static_cast<std::string*>(message) = record->desc;
  }
  return 0;
}

}  // namespace

void ThrowHdf5Error(const char* call, const char* file, int line, const std::string& path) {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, KeepInnermostMessage, &detail);
  std::string message = std::string(file) + ":" + std::to_string(line) + ": HDF5 call " + call +
                        " failed for '" + path + "'";
  if (!detail.empty()) message += ": " + detail;
  message += ". Check that the path is right, its directory is accessible and the disk has space.";
  throw DataError(message);
}

ScopedHdf5ErrorSilencer::ScopedHdf5ErrorSilencer() {
  H5Eget_auto2(H5E_DEFAULT, &saved_func_, &saved_data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

ScopedHdf5ErrorSilencer::~ScopedHdf5ErrorSilencer() {
  H5Eset_auto2(H5E_DEFAULT, saved_func_, saved_data_);
}

herr_t Hdf5Handle::Reset() {
  herr_t status = 0;
  if (id_ >= 0) status = close_(id_);
  id_ = -1;
  return status;
}

}  // namespace slim::hdf5
