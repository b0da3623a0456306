typedef int pw_placeholder_options; /* replaced by the real module */
