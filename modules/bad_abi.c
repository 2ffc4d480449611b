/* bad_abi.c - a module built for an ABI saker does not have: refused at
 * load with the file's name (tests/func/test_module.py). */
#include <saker/module.h>

SAKER_MODULE_EXPORT saker_module = {.abi = SAKER_MODULE_ABI + 1000, .name = "bad_abi"};
