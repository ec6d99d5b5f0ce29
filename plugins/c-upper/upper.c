/* c-upper: a `wasi:cli/command` in plain C against wasi-libc, no SDK and
 * no generated bindings: it copies its standard input to its standard
 * output in upper case, after its arguments. Input `fail` exits with code 3
 * (saying why on stderr); input `spin` loops until its fuel runs out. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    static char input[1 << 16];
    size_t n = fread(input, 1, sizeof input - 1, stdin);
    input[n] = '\0';
    if (strcmp(input, "fail") == 0) {
        fprintf(stderr, "asked to fail\n");
        return 3;
    }
    if (strcmp(input, "spin") == 0) {
        volatile unsigned long long i = 0;
        for (;;) {
            i++;
        }
    }
    for (int a = 1; a < argc; a++) {
        printf("%s ", argv[a]);
    }
    for (size_t i = 0; i < n; i++) {
        putchar(toupper((unsigned char)input[i]));
    }
    return 0;
}
