#include "runtime/base/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "runtime/base/errors.h"

namespace slim::files {

std::string PartialPath(const std::string& path) { return path + ".partial"; }

void Discard(const std::string& path) { std::remove(PartialPath(path).c_str()); }

void WriteAtomically(const std::string& path, const std::string& text) {
  {
    std::ofstream out(PartialPath(path), std::ios::binary);
    out << text;
    out.flush();
    if (!out) {
      Discard(path);
      throw OutputError("writing " + path + " failed: " + std::strerror(errno) +
                        "; check the free space and permissions of its directory");
    }
  }
  Commit(path);
}

void Commit(const std::string& path) {
  const std::string partial = PartialPath(path);
  const int fd = ::open(partial.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int sync_errno = errno;
  if (fd >= 0) ::close(fd);
  if (!synced || std::rename(partial.c_str(), path.c_str()) != 0) {
    const int error = synced ? errno : sync_errno;
    Discard(path);
    throw OutputError("writing " + path + " failed: " + std::strerror(error) +
                      "; check the free space and permissions of its directory");
  }
}

}  // namespace slim::files
