libs += apimodel
apimodel_srcs := $(wildcard lib/apimodel/*.c)
apimodel_ldlibs := -ljansson -lm
apimodel_ldlibs_static := -l:libjansson.a -lm
