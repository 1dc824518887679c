#include <cstdarg>
#include <cstdio>
#include <string>

#include "common.h"

namespace {
thread_local std::string last_error;
}

namespace kiln {

int fail(int code, const char* format, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof(buffer), format, args);
  va_end(args);
  last_error = buffer;
  return code;
}

void clear_error() { last_error.clear(); }

}  // namespace kiln

extern "C" const char* kiln_last_error(void) { return last_error.c_str(); }
