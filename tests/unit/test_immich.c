/* test_immich.c: the operator's Immich model aliases (service/immich.h):
 * NAME:TYPE=MODEL lists, Immich's names cleaned of their "org/" prefix, and
 * refusals naming the bad item. (Predictions themselves run end to end in
 * tests/integration/immich_ml.sh and insightface_parity.sh.) */
#include <string.h>

#include "service/immich.h"
#include "vdtest.h"

VD_TEST(aliases_parse_lists_and_repeats)
{
    vd_immich_aliases a;
    memset(&a, 0, sizeof a);
    vd_error err;
    CHECK_OK(vd_immich_aliases_parse("buffalo_l:detection=blazeface_back,"
                                     "immich-app/buffalo_l:recognition=faceres",
                                     &a, &err));
    CHECK_OK(vd_immich_aliases_parse("ViT-B-32__openai:visual=mobilenet_v2", &a, &err));
    CHECK_EQ_INT((int)a.n, 3);
    CHECK_EQ_STR(a.alias[0].name, "buffalo_l");
    CHECK_EQ_STR(a.alias[0].type, "detection");
    CHECK_EQ_STR(a.alias[0].model, "blazeface_back");
    CHECK_EQ_STR(a.alias[1].name, "buffalo_l"); /* the prefix is not part of the name */
    CHECK_EQ_STR(a.alias[1].model, "faceres");
    CHECK_EQ_STR(a.alias[2].type, "visual");
    CHECK_OK(vd_immich_aliases_parse("", &a, &err));
    CHECK_EQ_INT((int)a.n, 3);
}

VD_TEST(aliases_refuse_what_is_not_name_type_model)
{
    static const char *const bad[] = {"buffalo_l",
                                      "buffalo_l=faceres",
                                      ":detection=x",
                                      "buffalo_l:detection=",
                                      "buffalo_l:faces=faceres",
                                      "a=b:visual"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_immich_aliases a;
        memset(&a, 0, sizeof a);
        vd_error err;
        CHECK_EQ_INT(vd_immich_aliases_parse(bad[i], &a, &err), VD_ERR_INVALID);
        CHECK(strstr(err.msg, "immich model alias") != NULL);
    }
    vd_immich_aliases a;
    memset(&a, 0, sizeof a);
    vd_error err;
    for (int i = 0; i < VD_IMMICH_MAX_ALIASES; i++)
        CHECK_OK(vd_immich_aliases_parse("n:visual=m", &a, &err));
    CHECK_EQ_INT(vd_immich_aliases_parse("n:visual=m", &a, &err), VD_ERR_INVALID);
}

int main(void)
{
    return vd_test_run_all();
}
