typedef int pw_placeholder_record; /* replaced by the real module */
