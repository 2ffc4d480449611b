/* no_symbol.c - a shared object without saker_module: refused at load
 * (tests/func/test_module.py). */
int not_a_module(void);
int not_a_module(void)
{
    return 0;
}
