/* placeholder until the stage lands */
int main(void) { return 0; }
