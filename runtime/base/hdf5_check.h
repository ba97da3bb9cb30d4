// Checking of raw HDF5 C API calls: every call goes through SLIM_H5_CHECK, which turns a
// negative return into a slim::DataError naming the call, file:line, the HDF5 file it
// concerned and HDF5's own message.
#pragma once

#include <hdf5.h>

#include <string>

namespace slim::hdf5 {

// Throws DataError for the failed HDF5 call `call` made at file:line on the HDF5 file
// `path`, including the innermost message of the current HDF5 error stack.
[[noreturn]] void ThrowHdf5Error(const char* call, const char* file, int line,
                                 const std::string& path);

// While alive, stops HDF5 from printing its error stack to stderr (the message goes into
// the DataError instead); restores the previous handler on destruction. Not thread-safe:
// it changes the process-wide default error stack settings.
class ScopedHdf5ErrorSilencer {
 public:
  ScopedHdf5ErrorSilencer();
  ~ScopedHdf5ErrorSilencer();
  ScopedHdf5ErrorSilencer(const ScopedHdf5ErrorSilencer&) = delete;
  ScopedHdf5ErrorSilencer& operator=(const ScopedHdf5ErrorSilencer&) = delete;

 private:
  H5E_auto2_t saved_func_ = nullptr;
  void* saved_data_ = nullptr;
};

// Owns an HDF5 identifier and closes it with the matching H5?close function; move-only.
class Hdf5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Hdf5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Hdf5Handle() { Reset(); }
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Hdf5Handle& operator=(Hdf5Handle&&) = delete;
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;

  hid_t get() const { return id_; }
  // Closes the identifier now, returning the close call's status (negative on failure),
  // so that errors on close, which may flush data, can be checked. Idempotent.
  herr_t Reset();

 private:
  hid_t id_;
  Closer close_;
};

}  // namespace slim::hdf5

// Evaluates the HDF5 call `call`; if it returns a negative value, throws DataError naming
// the call, this file:line and `path`. Otherwise yields the call's value.
#define SLIM_H5_CHECK(call, path)                                      \
  ([&]() {                                                             \
    const auto slim_h5_result = (call);                                \
    if (slim_h5_result < 0) {                                          \
      ::slim::hdf5::ThrowHdf5Error(#call, __FILE__, __LINE__, (path)); \
    }                                                                  \
    return slim_h5_result;                                             \
  }())
