/* err.h — errors inside the project: the public codes and helpers of hired_err.h (installed
 * with libhired) plus what only the project's own sources use (ARRAY_LEN). Every .c file of the
 * project includes this one; installed headers include hired_err.h instead, so nothing below
 * reaches a user's program (nor shadows the C library's <err.h>: this file is never installed). */
#ifndef HIRED_ERR_H
#define HIRED_ERR_H

#include "hired_err.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
