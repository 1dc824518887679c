// Error reporting shared by the launchers.
#pragma once

namespace kiln {

// Sets the thread's last-error message (printf-style) and returns code.
int cuda_fail(int code, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace kiln
