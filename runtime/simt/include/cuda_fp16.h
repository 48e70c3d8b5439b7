/* cuda_fp16.h for the SIMT emulator: everything it would declare comes from simt.h, which the
 * emulator's compiler command includes before the source (loader.c). */
#include "../simt.h"
