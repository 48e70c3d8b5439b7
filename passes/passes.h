/* passes: transformations of the tensor IR and the loop IR, one pass per file.
 *
 * So far the pipeline is a single step: lower.c turns the tensor IR into the loop IR
 * (`ir_lower_module`, declared with the loop IR in ir/ir.h). Fusion, tiling and the
 * other passes of ARCHITECTURE.md join here, each with one entry point. */
#ifndef TDSL_PASSES_H
#define TDSL_PASSES_H

#include "../ir/ir.h"

#endif
