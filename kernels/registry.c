/* registry.c — placeholder until the op table lands. */
int k_registry_placeholder(void);
int k_registry_placeholder(void) { return 0; }
