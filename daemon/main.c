/* cfwatchd: command line, lifecycle, signals. */
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    puts("cfwatchd " CFW_VERSION);
    return 0;
}
