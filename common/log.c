typedef int pw_placeholder_log; /* replaced by the real module */
