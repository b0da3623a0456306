typedef int pw_placeholder_push; /* replaced by the real module */
