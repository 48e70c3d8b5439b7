/* fuzz_frontend: libFuzzer target for the whole front end. Each input is a .tdsl program:
 * it is parsed and printed (ast_parse + ast_print) and compiled to tensor IR
 * (fe_compile_source), whose result must pass the verifier and print. Diagnostics go to a
 * sink with no output. Any crash, sanitizer report, leak, timeout or failed verification is
 * a bug: the language promises that tcc never crashes, whatever the input bytes.
 *
 * Build with -DTDSL_FUZZ=ON and CC=clang-19; scripts/fuzz.sh runs it. */
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    DiagSink d;
    diag_init(&d, NULL);

    char *text = malloc(size + 1);   /* ast_parse takes ownership */
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    AstFile *f = ast_parse("fuzz.tdsl", text, size, &d);
    StrBuf out = {0};
    ast_print(f, &out);
    ast_file_free(f);
    diag_free(&d);

    diag_init(&d, NULL);
    FeOptions o = {0};
    Module *m = fe_compile_source("fuzz.tdsl", (const char *)data, size, &o, &d);
    if (m) {
        StrBuf err = {0};
        if (d.nerrors == 0 && !ir_verify(m, &err))
            td_internal_error(__FILE__, __LINE__, "IR verifier: %s", sb_cstr(&err));
        sb_free(&err);
        sb_clear(&out);
        ir_print_module(m, &out);
        ir_module_free(m);
    }
    sb_free(&out);
    diag_free(&d);
    return 0;
}
