// What libunitls.so exports: the public API and nothing else (the library
// is built with hidden visibility).
#pragma once

#define UNITLS_API __attribute__((visibility("default")))
