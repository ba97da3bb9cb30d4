#include "runtime/base/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/base/errors.h"

namespace slim::files {

namespace {

// An open file descriptor, closed on every path out.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the close's own failure (delayed write errors).
  bool Close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return true;
}

[[noreturn]] void Fail(const std::string& path, const std::string& temporary, int error) {
  std::remove(temporary.c_str());
  throw OutputError("writing " + path + " failed: " + std::strerror(error) +
                    "; check the free space and permissions of its directory");
}

}  // namespace

void WriteAtomically(const std::string& path, std::string_view bytes,
                     const std::function<void()>& halfway) {
  const std::string temporary = path + ".tmp";
  Descriptor file(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (file.get() < 0) Fail(path, temporary, errno);
  const size_t half = halfway ? bytes.size() / 2 : bytes.size();
  if (!WriteAll(file.get(), bytes.substr(0, half))) Fail(path, temporary, errno);
  if (halfway) halfway();
  if (!WriteAll(file.get(), bytes.substr(half)) || ::fsync(file.get()) != 0 || !file.Close() ||
      std::rename(temporary.c_str(), path.c_str()) != 0) {
    Fail(path, temporary, errno);
  }
  const auto parent = std::filesystem::path(path).parent_path();
  Descriptor directory(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY));
  if (directory.get() >= 0) ::fsync(directory.get());  // best effort: the data is renamed
}

}  // namespace slim::files
